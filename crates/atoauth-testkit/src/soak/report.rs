//! What a soak run measured, the "flat" verdict, and the curves as CSV and PNG.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One reading of the server and its store.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Seconds since the traffic started.
    pub seconds: f64,
    /// The server's resident memory, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// The server's open file descriptors.
    pub fds: usize,
    /// Rows of `oauth_sessions`.
    pub sessions: i64,
    /// Rows of `oauth_browser_sessions`.
    pub browser_sessions: i64,
    /// Rows of `oauth_states` (pending sign-ins).
    pub states: i64,
    /// Browsers signed in at the moment of the reading.
    pub live: usize,
    /// Proxied requests so far.
    pub requests: u64,
    /// Unexpected answers so far.
    pub errors: u64,
}

/// A whole run.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    /// The readings, in order.
    pub samples: Vec<Sample>,
    /// Proxied requests made.
    pub requests: u64,
    /// Access tokens expired on purpose (each followed at once by a call that must refresh).
    pub expiries: usize,
    /// Sign-out and sign-in cycles.
    pub cycles: usize,
    /// Refreshes the server counted (its metrics).
    pub refreshes: u64,
    /// Every answer that was not the expected one, with what it was.
    pub unexpected: Vec<String>,
}

/// The share of the run that is warm-up, excluded from the growth limits.
const WARM_UP: f64 = 0.2;

impl SoakReport {
    /// The sample at the end of warm-up (the first 20 % of the run).
    fn warm(&self) -> Option<&Sample> {
        let end = self.samples.last()?.seconds;
        self.samples.iter().find(|s| s.seconds >= end * WARM_UP)
    }

    /// Checks the run: from the end of warm-up, RSS grows by at most 10 % and open descriptors
    /// by at most 5; at every reading the store holds no more sessions (or browser sessions)
    /// than live browsers plus pending states; no unexpected answer. Every failed limit is named.
    ///
    /// # Errors
    /// The list of what was not flat.
    pub fn flat(&self) -> Result<(), Vec<String>> {
        let mut failures = Vec::new();
        let Some(warm) = self.warm() else {
            return Err(vec!["no samples".to_owned()]);
        };
        for sample in self.samples.iter().filter(|s| s.seconds >= warm.seconds) {
            if sample.rss_kib.saturating_mul(10) > warm.rss_kib.saturating_mul(11) {
                failures.push(format!(
                    "RSS {} KiB at {:.0} s is over 110 % of {} KiB after warm-up",
                    sample.rss_kib, sample.seconds, warm.rss_kib
                ));
            }
            if sample.fds > warm.fds + 5 {
                failures.push(format!(
                    "{} open descriptors at {:.0} s, {} after warm-up",
                    sample.fds, sample.seconds, warm.fds
                ));
            }
        }
        for sample in &self.samples {
            let bound = i64::try_from(sample.live).unwrap_or(i64::MAX) + sample.states;
            if sample.sessions > bound || sample.browser_sessions > bound {
                failures.push(format!(
                    "at {:.0} s the store holds {} sessions and {} browser sessions for {} live \
                     browsers and {} pending states",
                    sample.seconds,
                    sample.sessions,
                    sample.browser_sessions,
                    sample.live,
                    sample.states
                ));
            }
        }
        failures.extend(
            self.unexpected
                .iter()
                .map(|e| format!("unexpected answer: {e}")),
        );
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    /// The growth figures for a summary line.
    #[must_use]
    pub fn summary(&self) -> String {
        let (Some(warm), Some(last)) = (self.warm(), self.samples.last()) else {
            return "no samples".to_owned();
        };
        let peak = self
            .samples
            .iter()
            .filter(|s| s.seconds >= warm.seconds)
            .map(|s| s.rss_kib)
            .max()
            .unwrap_or(warm.rss_kib);
        #[allow(clippy::cast_precision_loss)]
        let growth = (peak as f64 / warm.rss_kib.max(1) as f64 - 1.0) * 100.0;
        format!(
            "{:.0} s: {} proxied requests, {} forced expiries, {} refreshes, {} sign-out/sign-in \
             cycles, {} unexpected answers; RSS {} → peak {} KiB after warm-up ({growth:+.1} %), \
             descriptors {} → {}, rows at the end: {} sessions, {} browser sessions, {} pending \
             states for {} live browsers",
            last.seconds,
            self.requests,
            self.expiries,
            self.refreshes,
            self.cycles,
            self.unexpected.len(),
            warm.rss_kib,
            peak,
            warm.fds,
            last.fds,
            last.sessions,
            last.browser_sessions,
            last.states,
            last.live
        )
    }

    /// The readings as CSV, one line per sample.
    #[must_use]
    pub fn csv(&self) -> String {
        let mut csv = String::from(
            "seconds,rss_kib,fds,sessions,browser_sessions,states,live,requests,errors\n",
        );
        for s in &self.samples {
            let _ = writeln!(
                csv,
                "{:.1},{},{},{},{},{},{},{},{}",
                s.seconds,
                s.rss_kib,
                s.fds,
                s.sessions,
                s.browser_sessions,
                s.states,
                s.live,
                s.requests,
                s.errors
            );
        }
        csv
    }

    /// Writes `soak.csv` and plots it to `soak.png` in `dir` with gnuplot.
    ///
    /// # Errors
    /// When a file cannot be written or gnuplot is missing or fails.
    pub fn write(&self, dir: &Path, title: &str) -> Result<(), Error> {
        std::fs::create_dir_all(dir)?;
        let csv = dir.join("soak.csv");
        std::fs::write(&csv, self.csv())?;
        let script = format!(
            "set terminal pngcairo size 960,800\n\
             set output '{png}'\n\
             set datafile separator ','\n\
             set key right bottom opaque box\n\
             set grid\n\
             set multiplot layout 3,1 title '{title}'\n\
             set ylabel 'MiB'\n\
             set yrange [0:*]\n\
             plot '{csv}' every ::1 using 1:($2/1024) with lines lw 2 title 'RSS of atoauth serve'\n\
             set ylabel 'descriptors'\n\
             plot '{csv}' every ::1 using 1:3 with lines lw 2 title 'open file descriptors'\n\
             set ylabel 'rows'\n\
             set offsets 0, 0, graph 0.15, 0\n\
             set xlabel 'seconds'\n\
             plot '{csv}' every ::1 using 1:4 with lines lw 2 title 'sessions', \
             '' every ::1 using 1:5 with lines title 'browser sessions', \
             '' every ::1 using 1:6 with lines title 'pending states', \
             '' every ::1 using 1:7 with lines dt 2 title 'live browsers'\n\
             unset multiplot\n",
            png = dir.join("soak.png").display(),
            csv = csv.display(),
        );
        let plot = dir.join("soak.gnuplot");
        std::fs::write(&plot, script)?;
        let output = Command::new("gnuplot")
            .arg(&plot)
            .output()
            .map_err(|e| format!("gnuplot (apt-get install gnuplot-nox): {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "gnuplot failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, rss_kib: u64, fds: usize, sessions: i64) -> Sample {
        Sample {
            seconds,
            rss_kib,
            fds,
            sessions,
            browser_sessions: sessions,
            states: 0,
            live: 50,
            requests: 0,
            errors: 0,
        }
    }

    #[test]
    fn growth_after_warm_up_and_extra_rows_are_not_flat() {
        let steady = SoakReport {
            samples: (0..=10)
                .map(|i| {
                    sample(
                        f64::from(i) * 10.0,
                        if i < 2 { 10_000 } else { 30_000 },
                        20,
                        50,
                    )
                })
                .collect(),
            ..SoakReport::default()
        };
        assert!(steady.flat().is_ok(), "{:?}", steady.flat());

        let mut leaking = steady;
        leaking.samples[10].rss_kib = 33_001;
        leaking.samples[9].fds = 26;
        leaking.samples[3].sessions = 51;
        leaking.unexpected.push("502".to_owned());
        let failures = leaking.flat().unwrap_err();
        assert_eq!(failures.len(), 4, "{failures:?}");
    }
}
