//! Finding the binary and running it to its end, or to a timeout.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `tramontane` binary Cargo built beside the running test: test executables live in
/// `target/<profile>/deps/`, binaries one level up (as assert_cmd's `cargo_bin` finds them).
/// `CARGO_BIN_EXE_tramontane`, when set at run time, wins.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("CARGO_BIN_EXE_tramontane") {
            return PathBuf::from(path);
        }
        let mut dir = std::env::current_exe().expect("the test executable's path");
        dir.pop();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let path = dir.join(format!("tramontane{}", std::env::consts::EXE_SUFFIX));
        assert!(
            path.is_file(),
            "no tramontane binary at {}: build it first (`cargo build -p tramontane-cli`)",
            path.display()
        );
        path
    })
}

/// Runs `command` to its end or the timeout, feeding it `stdin`; the exit code (-1 for a
/// signal), stdout and stderr. Both streams are read as the process writes them, so a
/// chatty run never blocks on a full pipe.
pub(crate) fn spawn_and_wait(
    mut command: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<(i32, Vec<u8>, Vec<u8>), String> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start the binary: {error}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        // A process that exits without reading all of it closes the pipe: not our failure.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|error| format!("cannot wait for the binary: {error}"))?
        {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            // A grandchild (a secret sink) may still hold the pipes: take what is there
            // rather than wait for it.
            return Err(format!(
                "still running after {timeout:?}, so it was killed; stderr so far:\n{}",
                String::from_utf8_lossy(&stderr.0.lock().unwrap())
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok((
        status.code().unwrap_or(-1),
        stdout.finish(),
        stderr.finish(),
    ))
}

/// A stream read to its end on a thread of its own, into a buffer shared with the caller.
struct Collected(Arc<Mutex<Vec<u8>>>, Option<std::thread::JoinHandle<()>>);

fn collect(stream: Option<impl Read + Send + 'static>) -> Collected {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let handle = stream.map(|mut stream| {
        let buffer = buffer.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(read) = stream.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                buffer.lock().unwrap().extend_from_slice(&chunk[..read]);
            }
        })
    });
    Collected(buffer, handle)
}

impl Collected {
    fn finish(self) -> Vec<u8> {
        if let Some(handle) = self.1 {
            let _ = handle.join();
        }
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn stdin_is_fed_and_a_large_output_never_blocks_the_run() {
        let input = "x".repeat(1 << 20);
        let (code, stdout, stderr) = spawn_and_wait(
            Command::new("cat"),
            Some(input.as_bytes()),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!((code, stdout.len(), stderr.len()), (0, input.len(), 0));
    }

    #[test]
    fn without_stdin_the_process_reads_nothing() {
        let (code, stdout, _) =
            spawn_and_wait(Command::new("cat"), None, Duration::from_secs(60)).unwrap();
        assert_eq!((code, stdout.len()), (0, 0));
    }

    #[test]
    fn a_run_past_its_timeout_is_killed_and_reported() {
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let started = Instant::now();
        let error = spawn_and_wait(sleep, None, Duration::from_millis(200)).unwrap_err();
        assert!(error.starts_with("still running after 200ms"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
