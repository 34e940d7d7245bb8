//! The bench binary started again in another role (the mock, the bare proxy), as a process
//! of its own so its CPU time is read apart: how a role is started and stopped, and how it
//! says where it listens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Set in the environment of the bench binary started in a role: which one.
pub const ROLE_VARIABLE: &str = "TRAMONTANE_BENCH_ROLE";

/// A role's process, stopped when dropped.
pub struct RoleProcess {
    child: Child,
    pub address: SocketAddr,
}

impl RoleProcess {
    /// Starts this bench binary again as `role`, with `env` beside, and waits for its address.
    pub fn start(role: &str, env: &[(&str, String)]) -> RoleProcess {
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .env(ROLE_VARIABLE, role)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("the {role} process does not start: {error}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .unwrap_or_else(|error| panic!("the {role} process's address: {error}"));
        RoleProcess {
            address: line.trim().parse().expect("a socket address"),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the role's process: a listener on a free loopback port, its address written on stdout
/// for [`RoleProcess::start`], and an exit once stdin closes, so a bench that dies takes its
/// roles with it.
pub fn listen() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking socket");
    println!("{}", listener.local_addr().expect("an address"));
    std::io::stdout().flush().expect("the address written");
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    listener
}
