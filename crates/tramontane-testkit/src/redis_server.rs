//! A private redis-server for one test, on a free loopback port, with nothing persisted: the
//! test may stop it and start it again on the same port, and read what the gateway left in
//! it. The binary is `TRAMONTANE_TEST_REDIS_SERVER` or `redis-server` on the PATH; when
//! neither starts, the test fails and says what to install (it never skips).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    url: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// One RESP reply, as far as the tests need them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl RedisServer {
    /// Starts a server, failing the test when it cannot.
    pub fn start() -> RedisServer {
        let binary = std::env::var_os("TRAMONTANE_TEST_REDIS_SERVER")
            .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = RedisServer {
            binary,
            port,
            url: format!("redis://127.0.0.1:{port}"),
            dir: tempfile::tempdir().expect("a directory for redis-server"),
            child: None,
        };
        server.launch();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (SIGKILL: as a crash would) and waits until the port refuses.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "redis-server still answers on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port, empty (nothing was persisted).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let log = self.dir.path().join("redis.log");
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {}: {error}; run the tests with `scripts/test`, which installs it, or install Redis 6.2 or newer (`apt-get install redis-server`) or set TRAMONTANE_TEST_REDIS_SERVER to its redis-server",
                    self.binary.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.try_command(&["PING"]).ok() == Some(Reply::Status("PONG".into())) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "redis-server exited with {status} on port {}: {}",
                    self.port,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {} within {START_TIMEOUT:?}: {}",
                self.port,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs one command, failing the test if the server does not answer.
    pub fn command(&self, args: &[&str]) -> Reply {
        self.try_command(args)
            .unwrap_or_else(|error| panic!("redis {args:?} failed: {error}"))
    }

    /// The keys matching a pattern, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let Reply::Array(Some(items)) = self.command(&["KEYS", pattern]) else {
            panic!("KEYS did not answer with an array");
        };
        let mut keys: Vec<String> = items
            .into_iter()
            .filter_map(|item| match item {
                Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                _ => None,
            })
            .collect();
        keys.sort();
        keys
    }

    /// Scripts this server has been sent: see [`scripts_sent`].
    pub fn scripts_sent(&self) -> u64 {
        scripts_sent(&self.address())
            .unwrap_or_else(|error| panic!("redis INFO commandstats failed: {error}"))
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn try_command(&self, args: &[&str]) -> std::io::Result<Reply> {
        command_at(&self.address(), args)
    }
}

/// Runs one command on the Redis at `address` (`host:port`), over a connection of its own.
pub fn command_at(address: &str, args: &[&str]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request)?;
    read_reply(&mut BufReader::new(stream))
}

/// Scripts the Redis at `address` has been sent since it started (`EVALSHA`, `EVAL`,
/// `SCRIPT LOAD`), from `INFO commandstats`. The gateway's store sends nothing but scripts,
/// one per operation, so these are its round trips. The commands a script runs inside Redis
/// are counted in `INFO commandstats` too, but cost no round trip, so they are left out.
pub fn scripts_sent(address: &str) -> std::io::Result<u64> {
    let Reply::Bulk(Some(text)) = command_at(address, &["INFO", "commandstats"])? else {
        return Err(invalid("INFO commandstats did not answer with text"));
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            if !["evalsha", "eval", "script|load"].contains(&name) {
                return None;
            }
            stats
                .split(',')
                .find_map(|stat| stat.strip_prefix("calls="))?
                .parse::<u64>()
                .ok()
        })
        .sum())
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at_checked(1).ok_or_else(|| invalid("empty"))?;
    let number = || rest.parse::<i64>().map_err(|_| invalid(line));
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Integer(number()?),
        "$" => match usize::try_from(number()?) {
            Err(_) => Reply::Bulk(None),
            Ok(length) => {
                let mut bytes = vec![0; length + 2];
                reader.read_exact(&mut bytes)?;
                bytes.truncate(length);
                Reply::Bulk(Some(bytes))
            }
        },
        "*" => match usize::try_from(number()?) {
            Err(_) => Reply::Array(None),
            Ok(count) => Reply::Array(Some(
                (0..count)
                    .map(|_| read_reply(reader))
                    .collect::<std::io::Result<_>>()?,
            )),
        },
        _ => return Err(invalid(line)),
    })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answers_stops_and_comes_back_empty_on_its_port() {
        let mut redis = RedisServer::start();
        assert_eq!(
            redis.command(&["SET", "a", "1"]),
            Reply::Status("OK".into())
        );
        assert_eq!(redis.keys("*"), vec!["a".to_owned()]);
        let url = redis.url().to_owned();
        redis.stop();
        assert!(redis.try_command(&["PING"]).is_err());
        redis.restart();
        assert_eq!(redis.url(), url);
        assert_eq!(redis.keys("*"), Vec::<String>::new());
    }
}
