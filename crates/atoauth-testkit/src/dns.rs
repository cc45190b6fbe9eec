//! A DNS server on 127.0.0.1 (UDP) that answers TXT queries from a fixed table, and a hickory
//! resolver pointed at it. Enough for `_atproto.<handle>` cases without touching real DNS.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::net::UdpSocket;

/// A running DNS server; stops when dropped.
#[derive(Debug)]
pub struct TestDns {
    address: SocketAddr,
    queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestDns {
    /// Serves `records`: for each name (without the trailing dot, any case), its TXT records,
    /// each a list of character strings (joined by the client). Unknown names get NXDOMAIN.
    pub async fn start(records: &[(&str, &[&[&str]])]) -> Self {
        let table: HashMap<String, Vec<Vec<String>>> = records
            .iter()
            .map(|(name, txts)| {
                let txts = txts
                    .iter()
                    .map(|strings| strings.iter().map(|s| (*s).to_owned()).collect())
                    .collect();
                (name.to_ascii_lowercase(), txts)
            })
            .collect();
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let address = socket.local_addr().expect("a local address");
        let queries = Arc::new(AtomicUsize::new(0));
        let count = queries.clone();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buffer).await {
                count.fetch_add(1, Ordering::SeqCst);
                if let Some(reply) = answer(&buffer[..n], &table) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Self {
            address,
            queries,
            task,
        }
    }

    /// The server's UDP address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many queries arrived.
    pub fn query_count(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// A resolver that asks only this server, over UDP, without caching.
    pub fn resolver(&self) -> TokioResolver {
        let mut connection = ConnectionConfig::udp();
        connection.port = self.address.port();
        let server = NameServerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), true, vec![connection]);
        let config = ResolverConfig::from_parts(None, vec![], vec![server]);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        builder.options_mut().cache_size = 0;
        builder.options_mut().attempts = 1;
        builder.build().expect("a resolver for the test DNS server")
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Builds the response to one query: the question echoed, TXT answers or NXDOMAIN.
fn answer(query: &[u8], table: &HashMap<String, Vec<Vec<String>>>) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to a zero byte, then QTYPE and QCLASS.
    let mut position = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(position)?);
        position += 1;
        if length == 0 {
            break;
        }
        labels.push(
            String::from_utf8_lossy(query.get(position..position + length)?).to_ascii_lowercase(),
        );
        position += length;
    }
    let question_end = position + 4;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([query[position], query[position + 1]]);
    let name = labels.join(".");
    let records = table.get(&name);
    let answers: &[Vec<String>] = match records {
        Some(records) if qtype == 16 => records,
        _ => &[],
    };
    let rcode: u8 = if records.is_none() { 3 } else { 0 };
    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[0..2]); // id
    reply.push(0x80 | (query[2] & 0x79) | 0x04); // QR, opcode, AA, RD
    reply.push(0x80 | rcode); // RA, RCODE
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&u16::try_from(answers.len()).ok()?.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    for strings in answers {
        let mut data = Vec::new();
        for s in strings {
            data.push(u8::try_from(s.len()).ok()?);
            data.extend_from_slice(s.as_bytes());
        }
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
        reply.extend_from_slice(&u16::try_from(data.len()).ok()?.to_be_bytes());
        reply.extend_from_slice(&data);
    }
    Some(reply)
}
