//! Arrow Flight over TLS: the same rustls configuration as HTTPS (ring,
//! the same certificate, the same client CA), with `h2` as the one ALPN
//! protocol gRPC speaks. Each connection carries the fingerprint of the
//! client certificate it presented to every request on it, where the
//! Flight service identifies the caller exactly as HTTPS does (a token if
//! one is sent, else a registered certificate).
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

/// Accepted, handshaken connections, for tonic's `serve_with_incoming`.
/// The accept loop ends when tonic drops the stream.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
) -> ReceiverStream<std::io::Result<TlsConn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "Flight accept failed");
                        continue;
                    }
                },
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let stream = match acceptor.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "Flight TLS handshake failed");
                        return;
                    }
                };
                let fingerprint = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|c| tongban_core::tls::fingerprint(c.as_ref()));
                let conn = TlsConn {
                    stream,
                    peer: FlightPeer { fingerprint },
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}
