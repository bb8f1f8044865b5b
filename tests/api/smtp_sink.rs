//! A real SMTP server on loopback for the tests: Latchkey's outbox worker
//! talks SMTP to it over TCP, exactly as to a production relay. It keeps what
//! it receives; it can be stopped and started again on the same port (an
//! outage), or told to refuse recipients for good (a 550).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

#[derive(Clone, Debug)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The message with quoted-printable soft breaks and `=3D` undone, for searching.
    pub fn text(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The token of the first `{path}#token=` link in the mail.
    pub fn token(&self, path: &str) -> String {
        let text = self.text();
        let marker = format!("/{path}#token=");
        let start = text.find(&marker).unwrap_or_else(|| panic!("no {marker} link in:\n{text}")) + marker.len();
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }

    pub fn subject(&self) -> String {
        self.data.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_owned()
    }
}

pub struct SmtpSink {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
    refuse: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sink = Self { port, inbox: Arc::default(), refuse: Arc::default(), task: None };
        sink.serve(listener);
        sink
    }

    /// Listens again on the same port after [`Self::stop`].
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }

    /// Stops listening and drops open connections: the server is gone.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// From now on every recipient is refused with a permanent 550.
    pub fn refuse_recipients(&self) {
        self.refuse.store(true, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn all(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    pub fn to(&self, address: &str) -> Vec<Received> {
        self.all().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
    }

    /// Waits up to `within` for the `n`th mail to `address` and returns it.
    pub async fn wait_for_nth(&self, address: &str, n: usize, within: Duration) -> Received {
        let started = std::time::Instant::now();
        loop {
            let mails = self.to(address);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            assert!(started.elapsed() < within, "mail #{n} to {address} did not arrive within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits up to `within` for the `n`th mail to `address` whose subject
    /// contains `subject` (mails are sent side by side, so arrival order
    /// between kinds is not fixed).
    pub async fn wait_for_subject_nth(&self, address: &str, subject: &str, n: usize, within: Duration) -> Received {
        let started = std::time::Instant::now();
        loop {
            let mails: Vec<Received> = self.to(address).into_iter().filter(|m| m.subject().contains(subject)).collect();
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            assert!(started.elapsed() < within, "mail #{n} `{subject}` to {address} did not arrive within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for_subject(&self, address: &str, subject: &str) -> Received {
        self.wait_for_subject_nth(address, subject, 1, Duration::from_secs(10)).await
    }

    pub async fn wait_for(&self, address: &str) -> Received {
        self.wait_for_nth(address, 1, Duration::from_secs(10)).await
    }

    fn serve(&mut self, listener: TcpListener) {
        let (inbox, refuse) = (self.inbox.clone(), self.refuse.clone());
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(session(stream, inbox.clone(), refuse.clone()));
            }
        }));
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn session(stream: TcpStream, inbox: Arc<Mutex<Vec<Received>>>, refuse: Arc<AtomicBool>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let refusal;
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") || command.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO") {
            if refuse.load(Ordering::SeqCst) {
                // As real relays do, the refusal quotes the recipient.
                let address = line.trim_end()[8..].trim().to_owned();
                refusal = format!("550 5.1.1 {address}: no such mailbox\r\n");
                refusal.as_bytes()
            } else {
                let address = line.trim_end()[8..].trim().trim_start_matches('<').trim_end_matches('>').to_owned();
                to.push(address);
                b"250 OK\r\n"
            }
        } else if command == "DATA" {
            let _ = write.write_all(b"354 end with .\r\n").await;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            inbox.lock().unwrap().push(Received { to: std::mem::take(&mut to), data });
            b"250 OK queued\r\n"
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 OK\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
