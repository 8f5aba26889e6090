//! A minimal Lambda Runtime API on loopback, for cold starts: it hands out
//! one event on `GET /2018-06-01/runtime/invocation/next`, notes the moment
//! the function posts its response, and then holds the function's next poll
//! forever, so the process stays alive (blocked, as Lambda freezes it) while
//! its peak RSS is read. The same listener plays the few Twilio REST
//! endpoints a function's first event may call (recording media, DELETEs),
//! so nothing leaves the machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes of audio served for any recording.
pub const MEDIA_LEN: usize = 256 * 1024;

/// What the function posted back.
#[derive(Debug, Clone)]
pub struct Posted {
    pub at: Instant,
    /// `…/invocation/<id>/response`, `…/error`, or `/runtime/init/error`.
    pub path: String,
    pub body: String,
}

#[derive(Default)]
struct State {
    served: bool,
    posted: Option<Posted>,
}

pub struct Emulator {
    pub addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Emulator {
    /// Listens on a free loopback port and serves `event` once.
    pub fn start(event: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let event = Arc::new(event);
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (s, st, event) = (s.clone(), st.clone(), event.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &event, &s, &st);
                });
            }
        });
        Self { addr, state, stop }
    }

    /// Waits for the function's response (or error) up to `timeout`.
    pub fn wait(&self, timeout: Duration) -> Option<Posted> {
        let (lock, ready) = &*self.state;
        let guard = lock.lock().unwrap();
        let (guard, _) = ready
            .wait_timeout_while(guard, timeout, |s| s.posted.is_none())
            .unwrap();
        guard.posted.clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, event: &[u8], state: &(Mutex<State>, Condvar), stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        // Request line and headers.
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;

        if method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
            let first = {
                let mut s = state.0.lock().unwrap();
                !std::mem::replace(&mut s.served, true)
            };
            if !first {
                // The function's next poll: hold it, as Lambda does between events.
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(());
            }
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\r\n",
                event.len()
            );
            out.write_all(head.as_bytes())?;
            out.write_all(event)?;
        } else if method == "POST" && path.starts_with("/2018-06-01/runtime/") {
            let posted = Posted {
                at: Instant::now(),
                path,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let (lock, ready) = state;
            lock.lock().unwrap().posted.get_or_insert(posted);
            ready.notify_all();
            out.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"status\":\"OK\"}\n")?;
        } else if method == "GET" && path.contains("/Recordings/") && path.ends_with(".mp3") {
            // Twilio's recording media: audio, not compressible.
            let mut media = Vec::with_capacity(MEDIA_LEN);
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            while media.len() < MEDIA_LEN {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                media.extend_from_slice(&seed.to_le_bytes());
            }
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\ncontent-length: {MEDIA_LEN}\r\n\r\n");
            out.write_all(head.as_bytes())?;
            out.write_all(&media)?;
        } else if method == "DELETE" {
            out.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")?;
        } else {
            let body = br#"{"code": 20404, "message": "The requested resource was not found", "status": 404}"#;
            let head = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            out.write_all(head.as_bytes())?;
            out.write_all(body)?;
        }
        out.flush()?;
    }
}
