//! The command line: `ajax-sim --listen ADDR --api-key KEY [--rate N/WINDOW] [--window W]
//! [--session-ttl D] [--refresh-ttl D]`, each also settable from an `AJAX_SIM_*` variable.

use std::time::Duration;

use clap::Parser;

use crate::config::{DEFAULT_WINDOW, RateLimit, SimConfig, parse_duration};

/// A faithful simulator of the Ajax Systems cloud API (basePath /api), with /_sim test endpoints.
// No Debug derive: the struct holds the API key.
#[derive(Parser)]
#[command(name = "ajax-sim", version, about)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, env = "AJAX_SIM_LISTEN", default_value = "127.0.0.1:8088")]
    pub listen: String,

    /// The X-Api-Key every /api call must carry.
    #[arg(long, env = "AJAX_SIM_API_KEY", hide_env_values = true)]
    pub api_key: String,

    /// Refuse calls beyond N in any rolling WINDOW with 429, e.g. 100/60s, 100/m, 10/500ms.
    #[arg(long, env = "AJAX_SIM_RATE", value_parser = parse_rate)]
    pub rate: Option<RateLimit>,

    /// Window for the max_in_window statistic [default: the --rate window, else 60s].
    #[arg(long, env = "AJAX_SIM_WINDOW", value_parser = parse_duration)]
    pub window: Option<Duration>,

    /// Session token lifetime, e.g. 2s, 900s, 15m.
    #[arg(long, env = "AJAX_SIM_SESSION_TTL", default_value = "15m", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// Refresh token lifetime.
    #[arg(long, env = "AJAX_SIM_REFRESH_TTL", default_value = "7d", value_parser = parse_duration)]
    pub refresh_ttl: Duration,
}

fn parse_rate(text: &str) -> Result<RateLimit, String> {
    text.parse()
}

impl Args {
    /// The checked configuration these arguments describe.
    pub fn config(&self) -> SimConfig {
        SimConfig {
            api_key: self.api_key.clone(),
            rate: self.rate,
            window: self.window.or(self.rate.map(|r| r.window)).unwrap_or(DEFAULT_WINDOW),
            session_ttl: self.session_ttl,
            refresh_ttl: self.refresh_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("ajax-sim").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_ajax_lifetimes_and_no_limit() {
        let config = parse(&["--api-key", "k"]).expect("args").config();
        assert_eq!(config.rate, None);
        assert_eq!(config.window, DEFAULT_WINDOW);
        assert_eq!(config.session_ttl, Duration::from_secs(900));
        assert_eq!(config.refresh_ttl, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn rate_and_lifetimes_are_read_from_flags() {
        let args = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "k",
            "--rate",
            "5/1s",
            "--session-ttl",
            "2s",
            "--refresh-ttl",
            "900s",
        ])
        .expect("args");
        let config = args.config();
        assert_eq!(args.listen, "127.0.0.1:0");
        assert_eq!(config.rate.map(|r| r.limit), Some(5));
        assert_eq!(config.window, Duration::from_secs(1));
        assert_eq!(config.session_ttl, Duration::from_secs(2));
        assert_eq!(config.refresh_ttl, Duration::from_secs(900));
    }

    #[test]
    fn an_explicit_window_overrides_the_rate_window_for_the_witness() {
        let args = parse(&["--api-key", "k", "--rate", "100/60s", "--window", "10s"]);
        let config = args.expect("args").config();
        assert_eq!(config.window, Duration::from_secs(10));
        assert_eq!(config.rate.map(|r| r.window), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_malformed_rate_is_a_usage_error() {
        assert!(parse(&["--api-key", "k", "--rate", "lots"]).is_err());
    }
}
