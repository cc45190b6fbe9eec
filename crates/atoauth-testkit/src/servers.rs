//! Real PostgreSQL and Redis servers for tests, on 127.0.0.1 and free ports, with throwaway data
//! directories: one of each per test binary, started on first use. Each runs under a small shell
//! watchdog that stops it (and removes its directory) when this process's stdin pipe to it
//! closes, so servers never outlive the test binary, whether it passes, panics or is killed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running server.
#[derive(Debug)]
pub struct ExternalServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its data directory.
    pub dir: PathBuf,
    // Closing this pipe (at process exit) makes the watchdog stop the server.
    _stdin: ChildStdin,
    _child: Child,
}

static POSTGRES: OnceLock<ExternalServer> = OnceLock::new();
static REDIS: OnceLock<ExternalServer> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn scratch(prefix: &str) -> PathBuf {
    let dir = PathBuf::from(format!(
        "/tmp/atoauth-{prefix}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Runs `command` under a watchdog: `read` blocks on our pipe; at EOF the server gets `signal`
/// and its directory is removed.
fn watched(command: &str, signal: &str, dir: &Path) -> (Child, ChildStdin) {
    let script = format!(
        "{command} & pid=$!; read _; kill -{signal} $pid 2>/dev/null; wait $pid; rm -rf '{}'",
        dir.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh");
    let stdin = child.stdin.take().expect("a stdin pipe");
    (child, stdin)
}

fn wait_until(what: &str, log: &Path, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not become ready:\n{log}");
}

fn pg_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return PathBuf::from(dir).join(name);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .last()
        .map(|v| v.join("bin").join(name))
        .expect("PostgreSQL (apt-get install postgresql)")
}

const AS_POSTGRES: &str = "setpriv --reuid=postgres --regid=postgres --init-groups --";

/// A new PostgreSQL data directory under `dir` (owned by the `postgres` user).
fn init_postgres(dir: &Path) {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .expect("chown");
    assert!(status.success(), "chown the PostgreSQL directory");
    let init = Command::new("sh")
        .args([
            "-c",
            &format!(
                "{AS_POSTGRES} {} -D '{}/data' -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions > '{}' 2>&1",
                pg_bin("initdb").display(),
                dir.display(),
                dir.join("initdb.log").display()
            ),
        ])
        .status()
        .expect("initdb");
    assert!(init.success(), "initdb failed; see {}", dir.display());
}

/// The server's command line (without the user switch): durable settings off, for speed.
fn postgres_command(dir: &Path, port: u16) -> String {
    format!(
        "{} -D '{dir}/data' -k '{dir}' -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200",
        pg_bin("postgres").display(),
        dir = dir.display(),
    )
}

fn postgres_ready(port: u16) -> bool {
    Command::new(pg_bin("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The PostgreSQL server of this test binary (superuser `postgres`, trust authentication).
///
/// # Panics
/// When PostgreSQL is missing or does not start.
pub fn postgres() -> &'static ExternalServer {
    POSTGRES.get_or_init(|| {
        let dir = scratch("pg");
        init_postgres(&dir);
        let port = free_port();
        let log = dir.join("server.log");
        let command = format!(
            "{AS_POSTGRES} {} > '{log}' 2>&1",
            postgres_command(&dir, port),
            log = log.display(),
        );
        let (child, stdin) = watched(&command, "QUIT", &dir);
        wait_until("PostgreSQL", &log, || postgres_ready(port));
        ExternalServer {
            port,
            dir,
            _stdin: stdin,
            _child: child,
        }
    })
}

/// A new, empty database on the test PostgreSQL; its URL.
///
/// # Panics
/// When the database cannot be created.
pub fn postgres_database(name: &str) -> String {
    let server = postgres();
    let n = DATABASES.fetch_add(1, Ordering::SeqCst);
    let database = format!("{name}_{}_{n}", std::process::id());
    let status = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
            "-q",
            "-c",
        ])
        .arg(format!("CREATE DATABASE {database}"))
        .stdout(Stdio::null())
        .status()
        .expect("psql");
    assert!(status.success(), "CREATE DATABASE {database}");
    format!("postgres://postgres@127.0.0.1:{}/{database}", server.port)
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream
        .read(&mut answer)
        .is_ok_and(|n| answer[..n].starts_with(b"+PONG"))
}

/// The Redis server of this test binary.
///
/// # Panics
/// When redis-server is missing or does not start.
pub fn redis() -> &'static ExternalServer {
    REDIS.get_or_init(|| {
        let dir = scratch("redis");
        let port = free_port();
        let log = dir.join("server.log");
        let command = format!(
            "redis-server --bind 127.0.0.1 --port {port} --save '' --appendonly no --dir '{}' > '{}' 2>&1",
            dir.display(),
            log.display()
        );
        let (child, stdin) = watched(&command, "TERM", &dir);
        wait_until("Redis", &log, || redis_ping(port));
        ExternalServer {
            port,
            dir,
            _stdin: stdin,
            _child: child,
        }
    })
}

/// `redis://127.0.0.1:<port>/` with a key prefix unique to the caller.
pub fn redis_url() -> String {
    format!("redis://127.0.0.1:{}/", redis().port)
}

/// A Redis server of its own that a test crashes (`kill -9`) and restarts on the same port and
/// data directory, to see what survives: with `appendonly yes` and `appendfsync always`, every
/// acknowledged write; without AOF, nothing. Stopped and its directory removed when dropped.
#[derive(Debug)]
pub struct RestartableRedis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RestartableRedis {
    /// Starts one; `aof` is `None` for no persistence, or the `appendfsync` policy
    /// (`always`, `everysec`).
    ///
    /// # Panics
    /// When redis-server is missing or does not start.
    pub fn start(aof: Option<&str>) -> Self {
        let dir = scratch("redis-restart");
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--save".into(),
            String::new(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        match aof {
            Some(fsync) => {
                args.extend(["--appendonly", "yes", "--appendfsync", fsync].map(String::from))
            }
            None => args.extend(["--appendonly", "no"].map(String::from)),
        }
        let mut server = Self {
            port,
            dir,
            args,
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server with SIGKILL (a crash: nothing is flushed on the way out).
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (crashing it first if running).
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&mut self) {
        self.crash();
        let log = self.dir.join("server.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("a log file");
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(log_file.try_clone().expect("a log file"))
            .stderr(log_file)
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let port = self.port;
        wait_until("Redis", &log, || redis_ping(port));
    }
}

impl Drop for RestartableRedis {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL server of its own that a test stops with a fast shutdown (`SIGINT`: open
/// transactions are rolled back, connections ended, a checkpoint written) and starts again on the
/// same port and data directory, as a restart or a planned failover does. Stopped and its
/// directory removed when dropped.
#[derive(Debug)]
pub struct RestartablePostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RestartablePostgres {
    /// Creates a data directory and starts the server.
    ///
    /// # Panics
    /// When PostgreSQL is missing or does not start.
    pub fn start() -> Self {
        let dir = scratch("pg-restart");
        init_postgres(&dir);
        let mut server = Self {
            port: free_port(),
            dir,
            child: None,
        };
        server.restart();
        server
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn signal(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// A fast shutdown; returns once the server has exited.
    pub fn stop_fast(&mut self) {
        self.signal("INT");
    }

    /// Starts the server again (after a fast shutdown if it is running).
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&mut self) {
        self.stop_fast();
        let log = self.dir.join("server.log");
        let command = format!(
            "exec {AS_POSTGRES} {} >> '{}' 2>&1",
            postgres_command(&self.dir, self.port),
            log.display()
        );
        let child = Command::new("sh")
            .args(["-c", &command])
            .spawn()
            .expect("postgres");
        self.child = Some(child);
        let port = self.port;
        wait_until("PostgreSQL", &log, || postgres_ready(port));
    }
}

impl Drop for RestartablePostgres {
    fn drop(&mut self) {
        // An immediate shutdown: the directory is thrown away.
        self.signal("QUIT");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
