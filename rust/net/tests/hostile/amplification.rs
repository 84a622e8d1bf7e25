//! Attack: fake entries, each of a fresh identity the attacker made, that
//! list a victim's address (and a few unused ones). Honest nodes that dial
//! every entry they learn flood the victim. They must send the victim at
//! most twice the bytes the attacker sent them, whether the entries are
//! plain or claim the honest nodes' group (members dial fellow members),
//! and 10,000 entries must neither grow the catalog past its cap nor the
//! process by more than 64 MiB.

use std::sync::Arc;
use std::time::Duration;

use mosaik_net::Network;

use crate::common::{self, Attacker, Sink, WAIT};

/// How long the victim's traffic is counted, from the attacker's first
/// byte on.
const WINDOW: Duration = Duration::from_secs(10);
/// Unused addresses each fake entry lists after the victim's.
const DECOYS: usize = 7;
/// Bytes the victim may receive per byte the attacker sent.
const MAX_AMPLIFICATION: f64 = 2.0;
/// Growth of the process the largest variant may cause.
const MAX_RSS_GROWTH_MIB: f64 = 64.0;
/// The catalog's cap.
const MAX_CATALOG: f64 = 4096.0;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

struct Measured {
    amplification: f64,
    catalog_peak: f64,
    rss_growth_mib: f64,
}

/// Two honest nodes that know each other (and share a group when the fake
/// entries claim it) receive `count` fake entries in one Hello each; the
/// victim's bytes are counted for the window.
async fn flood_victim_through_fake_entries(
    count: usize,
    claim_group: bool,
    label: &str,
) -> Measured {
    let (a, b) = (
        common::start(common::config()).await,
        common::start(common::config()).await,
    );
    tokio::time::timeout(WAIT, b.sync_with(a.local_addr()))
        .await
        .expect("sync timed out")
        .expect("honest sync");
    if claim_group {
        let (ga, gb) = (
            a.join(common::group_spec()).unwrap(),
            b.join(common::group_spec()).unwrap(),
        );
        let mesh = [(&*ga, b.peer_id()), (&*gb, a.peer_id())];
        assert!(
            common::wait_until(WAIT, || common::all_bonded(&mesh)).await,
            "precondition: the honest members bond"
        );
    }
    let victim = Sink::bind();
    let decoys: Vec<Sink> = (0..DECOYS).map(|_| Sink::bind()).collect();
    let addrs: Vec<_> = std::iter::once(victim.addr)
        .chain(decoys.iter().map(|d| d.addr))
        .collect();
    let groups = if claim_group {
        vec![common::GROUP]
    } else {
        vec![]
    };
    let attacker = Arc::new(Attacker::bind([127, 0, 0, 1]));
    // The attacker introduces itself first, as nodes require of a hello.
    let entries = std::iter::once(attacker.own_entry())
        .chain(common::fake_entries(count, &addrs, &groups))
        .collect();
    let frame = Arc::new(common::hello_frames(entries));

    // The attacker's own entries and frame exist before the baseline.
    common::release_free_memory();
    let baseline = common::rss();
    let deadline = tokio::time::Instant::now() + WINDOW;
    let deliveries: Vec<_> = [&a, &b]
        .into_iter()
        .map(|node| {
            let (attacker, frame, to) =
                (attacker.clone(), frame.clone(), node.local_addr().clone());
            tokio::spawn(
                async move { common::deliver(&attacker.endpoint, &to, &frame, WINDOW).await },
            )
        })
        .collect();
    let (mut rss_peak, mut catalog_peak) = (baseline, 0.0f64);
    while tokio::time::Instant::now() < deadline {
        rss_peak = rss_peak.max(common::rss());
        catalog_peak = [&a, &b]
            .iter()
            .map(|n: &&Arc<Network>| common::metric(n, common::CATALOG_SIZE))
            .fold(catalog_peak, f64::max);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let (victim_bytes, decoy_bytes) = (victim.bytes(), decoys.iter().map(Sink::bytes).sum::<u64>());
    let mut attacker_bytes = 0;
    for delivery in deliveries {
        attacker_bytes += tokio::time::timeout(WAIT, delivery)
            .await
            .expect("delivery outlived its bound")
            .expect("delivery task")
            .sent;
    }
    let amplification = victim_bytes as f64 / attacker_bytes.max(1) as f64;
    let rss_growth_mib = common::mib(rss_peak.saturating_sub(baseline));
    eprintln!(
        "hostile: amplification_{label} amplification={amplification:.2} \
         victim_bytes={victim_bytes} decoy_bytes={decoy_bytes} attacker_bytes={attacker_bytes} \
         entries={count} window_s={} catalog_peak={catalog_peak}",
        WINDOW.as_secs()
    );
    attacker.close().await;
    common::close_all(&[&a, &b]).await;
    Measured {
        amplification,
        catalog_peak,
        rss_growth_mib,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_entries_do_not_turn_nodes_into_flooders() {
    let _lock = common::shared().await;
    let m = flood_victim_through_fake_entries(2_000, false, "entries").await;
    assert!(
        m.amplification <= MAX_AMPLIFICATION,
        "the victim received {:.2} bytes per attacker byte",
        m.amplification
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_group_members_do_not_turn_nodes_into_flooders() {
    let _lock = common::shared().await;
    let m = flood_victim_through_fake_entries(300, true, "group_claims").await;
    assert!(
        m.amplification <= MAX_AMPLIFICATION,
        "the victim received {:.2} bytes per attacker byte",
        m.amplification
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_fake_entries_bound_the_catalog_and_the_memory() {
    let _lock = common::exclusive().await;
    let m = flood_victim_through_fake_entries(10_000, false, "ten_thousand").await;
    // Only this variant runs alone, so only its memory reading means much.
    eprintln!(
        "hostile: fake_entries_memory rss_growth_mib={:.1} catalog_peak={}",
        m.rss_growth_mib, m.catalog_peak
    );
    assert!(
        m.amplification <= MAX_AMPLIFICATION,
        "the victim received {:.2} bytes per attacker byte",
        m.amplification
    );
    assert!(
        m.catalog_peak <= MAX_CATALOG,
        "the catalog grew to {} peers",
        m.catalog_peak
    );
    assert!(
        m.rss_growth_mib <= MAX_RSS_GROWTH_MIB,
        "the process grew by {:.1} MiB",
        m.rss_growth_mib
    );
}
