//! Mail: invitations and password reset links sent by email when a mail server is configured (`--smtp-url`), through
//! lettre's async SMTP transport (rustls, no OpenSSL). Without one, links are shown to the admin to pass on, and the
//! self-service "forgot password" page does not exist (it could only ever say that nothing was sent).
//!
//! [`Mailer`] is the seam: [`SmtpMailer`] sends, [`MemoryMailer`] keeps what would have been sent (for tests of an
//! application that embeds the admin), and the accounts service never knows which.

use std::sync::{Arc, Mutex};

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use livebaton_web::channel::BoxFuture;

use crate::storage::now_ms;

/// Most messages a [`MemoryMailer`] keeps (the oldest go first).
const MEMORY_LIMIT: usize = 100;

/// A message to send: plain text only (links in plain text cannot be hidden behind other text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Why a message was not sent. Logged; the person who asked is told only that mail could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The address or the message could not be built.
    #[error("the message could not be built: {0}")]
    Build(String),
    /// The server refused it or could not be reached.
    #[error("the mail server did not take the message: {0}")]
    Send(String),
    /// The `--smtp-url` is not one we understand.
    #[error("--smtp-url is not valid: {0}")]
    Config(String),
}

/// Sends mail.
pub trait Mailer: Send + Sync {
    /// Sends `mail`.
    fn send(&self, mail: Mail) -> BoxFuture<'_, Result<(), MailError>>;
}

/// Sends through an SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `url` (`smtps://user:password@host:465`, or `smtp://host:587?tls=required`, as lettre reads them)
    /// sending from `from` (`"livebaton <cms@example.com>"` or an address).
    ///
    /// # Errors
    /// [`MailError::Config`] for a URL or sender lettre does not accept.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| MailError::Config(error.to_string()))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|error: lettre::address::AddressError| MailError::Config(error.to_string()))?;
        Ok(SmtpMailer { transport, from })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: Mail) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            let to: Mailbox =
                mail.to.parse().map_err(|error: lettre::address::AddressError| MailError::Build(error.to_string()))?;
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(mail.subject)
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body)
                .map_err(|error| MailError::Build(error.to_string()))?;
            self.transport.send(message).await.map_err(|error| MailError::Send(error.to_string()))?;
            Ok(())
        })
    }
}

/// Keeps the messages it is given instead of sending them (at most 100, the newest).
#[derive(Clone, Default)]
pub struct MemoryMailer {
    /// The messages with the time they were "sent". A mutex: sends come from request tasks, reads from tests; each
    /// holds it for a push or a copy.
    sent: Arc<Mutex<Vec<(i64, Mail)>>>,
}

impl MemoryMailer {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The messages kept, oldest first.
    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().map(|sent| sent.iter().map(|(_, mail)| mail.clone()).collect()).unwrap_or_default()
    }
}

impl Mailer for MemoryMailer {
    fn send(&self, mail: Mail) -> BoxFuture<'_, Result<(), MailError>> {
        if let Ok(mut sent) = self.sent.lock() {
            if sent.len() == MEMORY_LIMIT {
                sent.remove(0);
            }
            sent.push((now_ms(), mail));
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_and_senders_are_checked_at_start() {
        assert!(SmtpMailer::new("smtps://user:secret@mail.example.com", "livebaton <cms@example.com>").is_ok());
        assert!(matches!(SmtpMailer::new("http://mail.example.com", "cms@example.com"), Err(MailError::Config(_))));
        assert!(matches!(SmtpMailer::new("smtp://mail.example.com", "not an address"), Err(MailError::Config(_))));
    }

    #[tokio::test]
    async fn a_memory_mailer_keeps_the_newest_hundred() {
        let mailer = MemoryMailer::new();
        for n in 0..105 {
            let mail = Mail { to: "a@example.com".into(), subject: format!("#{n}"), body: String::new() };
            mailer.send(mail).await.unwrap();
        }
        let sent = mailer.sent();
        assert_eq!((sent.len(), sent[0].subject.as_str(), sent[99].subject.as_str()), (100, "#5", "#104"));
    }
}
