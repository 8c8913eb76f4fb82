//! `tandem up`: the long-running node, and where its parts are wired
//! together. The service knows projects; the swarm (`p2p`) knows peers and
//! asks the service through [`Host`], implemented here; automatic sync
//! (`sync::auto`) hears of changes from both and acts through the
//! service. Only this file names all three.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tandem_protocol::PeerKey;
use tandem_protocol::wire::{Request, Response};
use tokio::net::TcpListener;

use crate::api::{Guard, app};
use crate::home::{Home, RuntimeInfo, StoreError, random_bytes};
use crate::p2p::host::{Gossip, Host, Verdict};
use crate::projects::watch;
use crate::service::Service;
use crate::sync::auto;

/// The node as the swarm sees it: requests are served by the sync
/// server (which enforces access), announcements judged by automatic
/// sync, and a new connection is a reason to sync (and, from the hub, the
/// moment to learn where its blob relay is).
pub struct NodeHost(pub Arc<Service>);

impl Host for NodeHost {
    fn serve(&self, peer: &PeerKey, request: Request) -> Response {
        self.0.serve(peer, request)
    }

    fn judge(&self, gossip: &Gossip) -> Verdict {
        self.0.on_gossip(gossip)
    }

    fn connected(&self, peer: &PeerKey) {
        self.0.auto_event(auto::schedule::Event::PeerConnected);
        self.0.on_connected_for_hub(peer);
    }

    /// Nothing to do: a sync in progress with the peer fails on its own,
    /// and the next connection syncs again.
    fn disconnected(&self, _peer: &PeerKey) {}

    fn may_use_hub(&self, peer: &PeerKey) -> bool {
        self.0.may_use_hub(peer)
    }

    fn circuit(&self, src: &PeerKey, dst: &PeerKey, open: bool) {
        if let Some(circuits) = self.0.hub_circuits() {
            circuits.note(src, dst, open);
        }
    }
}

pub struct UpOptions {
    pub listen: String,
    /// libp2p listen addresses.
    pub p2p_listen: Vec<String>,
    pub mdns: bool,
    /// Take part in the Kademlia DHT that finds peers through peers.
    pub dht: bool,
    /// UDP address of the iroh blob endpoint.
    pub blob_listen: String,
    /// A hub to use, saved into the settings (`--hub-address`).
    pub hub_address: Option<String>,
    /// Run as a hub (`tandem hub`).
    pub hub: Option<crate::hub::HubOptions>,
}

pub async fn up(home: Home, options: UpOptions) -> anyhow::Result<()> {
    let lock = match home.lock(Duration::from_secs(5)) {
        Ok(lock) => lock,
        Err(StoreError::Busy(path)) => {
            if let Some(info) = home.read_runtime() {
                bail!(
                    "a node is already running for {} at {}",
                    path.display(),
                    info.url
                );
            }
            bail!(
                "{} is in use by another tandem command; try again in a moment",
                path.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    let (_, created) = home.create_key_if_missing(random_bytes())?;
    if created {
        println!(
            "Created a new identity in {}. Set your name with `tandem init --name \"Your Name\" --email you@example.org`.",
            home.root().display()
        );
    }
    let service = {
        let home = home.clone();
        Arc::new(tokio::task::spawn_blocking(move || Service::open(home)).await??)
    };
    if let Some(address) = options.hub_address {
        let mut settings = service.settings();
        settings.relay = Some(address);
        service.save_settings(settings).context("--hub-address")?;
    }
    let role = match options.hub {
        Some(hub) => {
            service.set_hub(hub);
            crate::p2p::Role::Hub
        }
        None => crate::p2p::Role::Peer,
    };
    let listener = TcpListener::bind(&options.listen).await.with_context(|| {
        format!("cannot listen on {}: is another program using it? Pick another address with --listen 127.0.0.1:PORT", options.listen)
    })?;
    let address = listener.local_addr()?;
    let token = hex::encode(random_bytes::<32>());
    let mut guard = Guard::new(token.clone(), address.port());
    if !address.ip().is_loopback() {
        guard = guard.with_host(address.to_string());
        println!(
            "Warning: listening on {address}, which other machines can reach. Anyone with the token can use this node."
        );
    }
    let url = format!("http://127.0.0.1:{}", address.port());
    home.write_runtime(&RuntimeInfo {
        url: url.clone(),
        token: token.clone(),
        pid: std::process::id(),
    })?;

    // Record what changed while the node was down, then watch for changes.
    {
        let service = service.clone();
        tokio::task::spawn_blocking(move || service.sweep_all()).await?;
    }
    let watch =
        watch::start(service.clone()).context("cannot watch the projects folder for changes")?;
    let p2p_listen = options
        .p2p_listen
        .iter()
        .map(|a| {
            a.parse().with_context(|| {
                format!("--p2p-listen {a:?} is not a multiaddr like /ip4/0.0.0.0/tcp/4001")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let net = crate::p2p::start(
        Arc::new(NodeHost(service.clone())),
        service.key(),
        crate::p2p::NetOptions {
            listen: p2p_listen,
            mdns: options.mdns,
            dht: options.dht,
            name: service.profile().name,
            peer_book: home.root().join("peers.json"),
            role,
            external: service.hub().and_then(|hub| hub.external),
        },
    )?;
    service.set_net(net);
    let blob_listen: std::net::SocketAddr = options.blob_listen.parse().with_context(|| {
        format!(
            "--blob-listen {:?} is not an address like 0.0.0.0:4002",
            options.blob_listen
        )
    })?;
    service
        .start_blob_endpoint(blob_listen)
        .await
        .context("cannot start the blob endpoint")?;
    let blob_relay = match service.hub() {
        Some(hub) => {
            let relay = crate::hub::relay::BlobRelay::start(&service, hub.relay_listen).await?;
            service.serve_blob_relay(relay.url()).await;
            Some(relay)
        }
        None => None,
    };
    service.set_autosync(auto::run::start(service.clone()));
    // A hub keeps copies of the projects it is granted the reader role on.
    crate::hub::replica::start(service.clone());
    service.dial_relay();
    // JupyterLab containers left running by an earlier run (a crash, say)
    // are followed again; Docker being absent is not an error here.
    {
        let service = service.clone();
        tokio::spawn(async move { service.adopt_containers().await });
    }

    let me = service.identity();
    if let Some(hub) = service.hub_state() {
        println!(
            "Running as a hub for {}; blob relay at {}",
            if hub.options.open {
                "anyone".to_owned()
            } else {
                format!(
                    "members of the projects it keeps and {} allowed key(s)",
                    hub.options.allow.len()
                )
            },
            hub.blob_relay.get().map(String::as_str).unwrap_or("(none)")
        );
    }
    println!("Tandem node running as {} ({})", me.name, me.did);
    println!("Web UI: {url}/?token={token}");
    println!("Home:   {}", home.root().display());
    println!("Press Ctrl-C to stop.");

    let served = axum::serve(listener, app(service.clone(), guard))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    drop(watch);
    service.stop_all_containers().await;
    home.remove_runtime();
    service.close_blobs().await;
    if let Some(relay) = blob_relay {
        relay.stop().await;
    }
    tokio::task::spawn_blocking(move || service.compact()).await?;
    drop(lock);
    println!("Tandem node stopped.");
    served.context("the web server failed")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
