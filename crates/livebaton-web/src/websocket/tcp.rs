//! What the kernel knows about the TCP connection under a WebSocket: how many of our bytes the client's host has
//! acknowledged, whether some still wait for it, and how far its receive window reaches. The endpoint's idle sweep asks only about a client it is about to
//! close as silent (`crate::connections`), so this costs one system call per suspect connection, never one per frame.
//!
//! Linux answers with `getsockopt(TCP_INFO)`. Elsewhere [`TcpSocket::delivery`] knows nothing, and the sweep behaves
//! as it does for a connection that is not TCP (an in-memory pipe in tests): silence alone decides.
//!
//! The call goes through `libc`, already a dependency of the server and the load tool (and of tokio, mio and socket2
//! underneath): socket2 0.6 wraps many options but not `TCP_INFO`, and `nix` is not in the tree.

/// The socket under one connection, by its file descriptor, kept by the endpoint's registry for the idle sweep.
///
/// Only a number, not an owned descriptor: the connection's task owns the socket and closes it. The registry forgets
/// the number when the connection ends, a moment after the socket closed; a reading in that moment can find the
/// number reused by another socket or file (or by nothing), which can only change the verdict on the connection that
/// is ending anyway, never on the other one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpSocket {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

/// How the bytes sent on one connection are doing, as the kernel counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Bytes the client's host acknowledged since the connection opened (`tcpi_bytes_acked`).
    pub(crate) acked: u64,
    /// Whether bytes wait for the client: sent and not acknowledged, or not sent yet (`tcpi_unacked`,
    /// `tcpi_notsent_bytes`).
    pub(crate) outstanding: bool,
    /// The right edge of the client's receive window, in the same count as `acked`: acknowledged bytes plus the
    /// window it last advertised (`tcpi_snd_wnd`, Linux 5.4). Its host moves it on as its application reads and frees
    /// room, and otherwise only while it lets a young connection's window grow. `None` on an older kernel.
    pub(crate) window_end: Option<u64>,
}

impl TcpSocket {
    /// The socket under `stream`; `None` where this platform has no descriptor to read `TCP_INFO` with.
    pub(crate) fn of(stream: &tokio::net::TcpStream) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            Some(TcpSocket { fd: stream.as_raw_fd() })
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            None
        }
    }

    /// The kernel's counts for this socket right now, or `None` when it cannot tell (another platform, or the
    /// descriptor no longer names a TCP socket).
    pub(crate) fn delivery(self) -> Option<Delivery> {
        #[cfg(target_os = "linux")]
        {
            linux::delivery(self.fd)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::RawFd;

    use super::Delivery;

    pub(super) fn delivery(fd: RawFd) -> Option<Delivery> {
        // SAFETY: `tcp_info` is plain integers, so all zeroes is a valid value; a kernel older than the struct fills
        // only its prefix and leaves the rest zero.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
        // SAFETY: `info` and `len` are valid for writes of `len` bytes, as getsockopt requires. A descriptor that is not
        // (or no longer) a TCP socket makes the call fail, and nothing is read then.
        let status =
            unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast(), &raw mut len) };
        // A shorter answer, from a kernel before 4.1, does not reach `tcpi_bytes_acked`.
        if status != 0 || (len as usize) < std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8 {
            return None;
        }
        let outstanding = info.tcpi_unacked > 0 || info.tcpi_notsent_bytes > 0;
        let has_window = (len as usize) >= std::mem::offset_of!(libc::tcp_info, tcpi_snd_wnd) + 4;
        let window_end = has_window.then(|| info.tcpi_bytes_acked + u64::from(info.tcpi_snd_wnd));
        Some(Delivery { acked: info.tcpi_bytes_acked, outstanding, window_end })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The counts follow a real loopback connection: bytes written are acknowledged once the peer's host took them.
    #[tokio::test]
    async fn a_loopback_socket_reports_its_acknowledged_bytes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let socket = TcpSocket::of(&server).expect("a unix descriptor");
        let before = socket.delivery().expect("Linux answers TCP_INFO");
        server.write_all(&[7; 1000]).await.unwrap();
        let mut read = [0; 1000];
        client.read_exact(&mut read).await.unwrap();
        // The peer read them, so its host took them; its ACK may still be on the way back (a generous bound).
        let acknowledged = async {
            loop {
                let now = socket.delivery().unwrap();
                if now.acked >= before.acked + 1000 {
                    return now;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        };
        let after = tokio::time::timeout(std::time::Duration::from_secs(10), acknowledged).await.expect("acknowledged");
        assert!(!after.outstanding, "nothing left to deliver");
        if let (Some(before), Some(after)) = (before.window_end, after.window_end) {
            assert!(after >= before + 1000, "the peer read them: its window reaches as far beyond them");
        }
    }
}
