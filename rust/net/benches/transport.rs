//! Transport benchmark: round-trip latency and one-way throughput of framed
//! messages between two endpoints on 127.0.0.1, over the same QUIC, TLS and
//! framing code that `Network` uses. Prints one JSON object per line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mosaik_net::endpoint::{Endpoint, DISCOVERY_ALPN};
use mosaik_net::identity::Identity;
use mosaik_net::link::{self, LinkReceiver, LinkSender, DEFAULT_MAX_FRAME};

const ROUND_TRIPS: usize = 2_000;
const THROUGHPUT_BYTES: usize = 256 * 1024 * 1024;
const THROUGHPUT_TIME: Duration = Duration::from_secs(3);

fn endpoint() -> Endpoint {
    let id = Arc::new(Identity::generate().expect("identity"));
    Endpoint::bind(
        id,
        "127.0.0.1:0".parse().expect("addr"),
        &[],
        &mosaik_net::Limits::default(),
    )
    .expect("bind")
}

/// Echoes every frame back until the stream ends.
async fn echo(mut tx: LinkSender, mut rx: LinkReceiver) {
    while let Ok(msg) = rx.recv::<Vec<u8>>().await {
        if tx.send(&msg).await.is_err() {
            return;
        }
    }
}

/// Counts frames until a zero-length one, then answers with the count.
async fn sink(mut tx: LinkSender, mut rx: LinkReceiver) {
    let mut count = 0u64;
    while let Ok(msg) = rx.recv::<Vec<u8>>().await {
        if msg.is_empty() {
            let _ = tx.send(&count).await;
            return;
        }
        count += 1;
    }
}

async fn connected_pair(
    server: &Endpoint,
    client: &Endpoint,
) -> (quinn::Connection, quinn::Connection) {
    let addr = server.advertised().to_vec();
    let (conn, accepted) = tokio::join!(
        client.connect(server.peer_id(), &addr, DISCOVERY_ALPN),
        async {
            server
                .complete(server.accept().await.expect("incoming"))
                .await
        }
    );
    (conn.expect("connect"), accepted.expect("accept").conn)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

async fn latency(size: usize) {
    let (server, client) = (endpoint(), endpoint());
    let (conn, served) = connected_pair(&server, &client).await;
    let (mut tx, mut rx) = link::open(&conn, DEFAULT_MAX_FRAME).await.expect("open");
    let payload = vec![7u8; size];
    tx.send(&payload).await.expect("send");
    let (stx, srx) = link::accept(&served, DEFAULT_MAX_FRAME)
        .await
        .expect("accept_bi");
    let echoer = tokio::spawn(echo(stx, srx));
    let _: Vec<u8> = rx.recv().await.expect("first echo");
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let start = Instant::now();
        tx.send(&payload).await.expect("send");
        let _: Vec<u8> = rx.recv().await.expect("echo");
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "{{\"bench\":\"round_trip\",\"size\":{size},\"n\":{ROUND_TRIPS},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99)
    );
    tx.finish();
    echoer.abort();
    client.close(200).await;
    server.close(200).await;
}

async fn throughput(size: usize) {
    let (server, client) = (endpoint(), endpoint());
    let (conn, served) = connected_pair(&server, &client).await;
    let (mut tx, mut rx) = link::open(&conn, DEFAULT_MAX_FRAME).await.expect("open");
    let payload = link::encode_frame(&vec![7u8; size]).expect("frame");
    tx.send_frame(&payload).await.expect("send");
    let (stx, srx) = link::accept(&served, DEFAULT_MAX_FRAME)
        .await
        .expect("accept_bi");
    let counter = tokio::spawn(sink(stx, srx));
    let start = Instant::now();
    let mut sent = 1u64;
    while (sent as usize) * size < THROUGHPUT_BYTES && start.elapsed() < THROUGHPUT_TIME {
        tx.send_frame(&payload).await.expect("send");
        sent += 1;
    }
    tx.send(&Vec::<u8>::new()).await.expect("end");
    let received: u64 = rx.recv().await.expect("count");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(received, sent, "every frame must arrive");
    println!(
        "{{\"bench\":\"throughput\",\"size\":{size},\"messages\":{sent},\"msgs_per_s\":{:.0},\"mib_per_s\":{:.1}}}",
        sent as f64 / secs,
        sent as f64 * size as f64 / secs / (1024.0 * 1024.0)
    );
    let _ = counter.await;
    client.close(200).await;
    server.close(200).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for size in [1024, 64 * 1024] {
            latency(size).await;
            throughput(size).await;
        }
    });
}
