//! TLS connections for HTTPS and for Arrow Flight: one accept loop
//! ([`accept`]) that hands each handshaken connection on with the
//! fingerprint of the client certificate it presented, and Flight's side
//! of it: the same rustls configuration as HTTPS (ring, the same
//! certificate, the same client CA) with `h2` as the one ALPN protocol
//! gRPC speaks, and the connection type tonic serves. The Flight service
//! identifies a caller exactly as HTTPS does (a token if one is sent, else
//! a registered certificate).
//!
//! Handshakes run in tasks of their own, so a slow or silent client never
//! holds up the accept loop; a failed handshake ends that connection only.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// What a Flight request knows of its connection (a request extension).
#[derive(Debug, Clone, Default)]
pub struct FlightPeer {
    /// SHA-256 fingerprint of the verified client certificate, if any.
    pub fingerprint: Option<String>,
}

/// One TLS connection to the Flight endpoint.
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    peer: FlightPeer,
}

impl Connected for TlsConn {
    type ConnectInfo = FlightPeer;
    fn connect_info(&self) -> FlightPeer {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The API's TLS configuration, speaking HTTP/2 for gRPC.
pub fn config(api: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = api.clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Accepts connections on `listener` until `stop` resolves; each one's TLS
/// handshake runs in a task of its own, then `serve` gets the stream, the
/// client certificate's fingerprint (if one was presented and verified)
/// and the peer address. `what` names the endpoint in the log.
pub async fn accept<F, Fut>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    stop: impl std::future::Future<Output = ()>,
    what: &'static str,
    serve: F,
) where
    F: Fn(TlsStream<TcpStream>, Option<String>, std::net::SocketAddr) -> Fut
        + Clone
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: accept failed");
                    continue;
                }
            },
        };
        let (acceptor, serve) = (acceptor.clone(), serve.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "{what}: TLS handshake failed");
                    return;
                }
            };
            let fingerprint = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|c| tongban_core::tls::fingerprint(c.as_ref()));
            serve(stream, fingerprint, peer).await;
        });
    }
}

/// Accepted, handshaken connections, for tonic's `serve_with_incoming`.
/// The accept loop ends when tonic drops the stream.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
) -> ReceiverStream<std::io::Result<TlsConn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let closed = tx.clone();
    tokio::spawn(accept(
        listener,
        tls,
        async move { closed.closed().await },
        "Flight",
        move |stream, fingerprint, _peer| {
            let tx = tx.clone();
            async move {
                let conn = TlsConn {
                    stream,
                    peer: FlightPeer { fingerprint },
                };
                let _ = tx.send(Ok(conn)).await;
            }
        },
    ));
    ReceiverStream::new(rx)
}
