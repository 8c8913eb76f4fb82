//! A small internet in network namespaces, for testing nodes across NAT on
//! one machine.
//!
//! An "internet" namespace holds a bridge: the public segment
//! (198.51.100.0/24, a documentation range, so nothing real is ever
//! dialled). The hub sits on it at [`HUB_IP`], the internet namespace itself
//! answers at [`INTERNET_IP`] (a second public host for probes). Each
//! [`Site`] puts hosts on that segment the way a real network would:
//!
//! - [`SiteKind::Public`]: the host is on the public segment itself;
//! - [`SiteKind::Cone`]: a home router doing `MASQUERADE` (Linux keeps the
//!   source port when it can: endpoint-independent mapping) whose conntrack
//!   drops unsolicited inbound (address-and-port-dependent filtering), the
//!   usual port-restricted cone;
//! - [`SiteKind::Symmetric`]: the same router with `MASQUERADE
//!   --random-fully`: every destination sees another public port;
//! - [`SiteKind::DoubleNat`]: a carrier NAT (100.64.0.0/10 inside) in front
//!   of a home router, both doing `MASQUERADE`.
//!
//! Behind a router the hosts share a LAN (10.N.0.0/24, a bridge inside the
//! router's namespace, multicast on, so mDNS works between them).
//!
//! Everything is removed when the [`Topology`] is dropped, a panic
//! included. Names carry the test process's id and a counter, so tests
//! running at once never meet; interface names are made inside their
//! namespaces, so they stay short.

pub mod matrix;
pub mod probe;

use std::fmt;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The hub's address on the public segment.
pub const HUB_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The internet namespace's own address: the public hosts' default
/// gateway, and a second public host to probe NAT mappings against.
pub const INTERNET_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// How a site reaches the public segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SiteKind {
    Public,
    Cone,
    Symmetric,
    DoubleNat,
}

impl SiteKind {
    pub const ALL: [SiteKind; 4] = [
        SiteKind::Public,
        SiteKind::Cone,
        SiteKind::Symmetric,
        SiteKind::DoubleNat,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SiteKind::Public => "public",
            SiteKind::Cone => "cone",
            SiteKind::Symmetric => "symmetric",
            SiteKind::DoubleNat => "double NAT",
        }
    }
}

impl fmt::Display for SiteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One machine: its namespace and its own address (private behind NAT).
#[derive(Debug, Clone)]
pub struct Host {
    pub netns: String,
    pub ip: Ipv4Addr,
}

impl Host {
    /// `program args…` inside this host's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns, program]);
        command
    }
}

/// A network behind one way of reaching the internet.
#[derive(Debug, Clone)]
pub struct Site {
    pub kind: SiteKind,
    /// The address the public segment sees this site's traffic come from
    /// (the host's own for a public site, else the outermost router's).
    pub public_ip: Ipv4Addr,
    pub hosts: Vec<Host>,
}

/// Why a topology could not be built.
#[derive(Debug)]
pub enum NetnsError {
    /// This machine cannot run the test (no permission to make namespaces,
    /// a tool missing): the machine's limit, not a bug. Outside CI the
    /// tests skip on it; CI must provide both.
    Unavailable { what: String, reason: String },
    /// A step that should work here failed: a bug in the harness, or a
    /// kernel without a feature the topology needs.
    Setup { command: String, stderr: String },
}

impl fmt::Display for NetnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsError::Unavailable { what, reason } => {
                write!(f, "this machine cannot {what}: {reason}")
            }
            NetnsError::Setup { command, stderr } => {
                write!(f, "setting up namespaces: `{command}` failed: {stderr}")
            }
        }
    }
}

impl std::error::Error for NetnsError {}

/// Runs one setup command; its failure is a [`NetnsError::Setup`].
fn run(program: &str, args: &[&str]) -> Result<(), NetnsError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetnsError::Setup {
            command: command.clone(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsError::Setup {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `ip -n NS args…`.
fn ip_in(ns: &str, args: &[&str]) -> Result<(), NetnsError> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// `iptables args…` inside `ns`.
fn iptables_in(ns: &str, args: &[&str]) -> Result<(), NetnsError> {
    let mut all = vec!["netns", "exec", ns, "iptables"];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Whether `program version_flag` runs: the tools the topology needs.
fn have(program: &str, version_flag: &str) -> Result<(), NetnsError> {
    match Command::new(program).arg(version_flag).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(NetnsError::Unavailable {
            what: format!("run {program}"),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
        Err(e) => Err(NetnsError::Unavailable {
            what: format!("run {program}"),
            reason: e.to_string(),
        }),
    }
}

/// The namespaces made so far; all deleted on drop, so a failure halfway
/// through building leaves nothing behind either.
struct Namespaces {
    prefix: String,
    made: Vec<String>,
}

impl Namespaces {
    fn add(&mut self, role: &str) -> Result<String, NetnsError> {
        let name = format!("{}-{role}", self.prefix);
        // A namespace of this exact name can only be left over from a
        // killed run of a process with the same id.
        let _ = run("ip", &["netns", "del", &name]);
        let made = run("ip", &["netns", "add", &name]);
        if let Err(NetnsError::Setup { stderr, .. }) = made {
            if self.made.is_empty() {
                return Err(NetnsError::Unavailable {
                    what: "create network namespaces".into(),
                    reason: stderr,
                });
            }
            return Err(NetnsError::Setup {
                command: format!("ip netns add {name}"),
                stderr,
            });
        }
        self.made.push(name.clone());
        ip_in(&name, &["link", "set", "lo", "up"])?;
        Ok(name)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Topologies made by this process, for unique names.
static TOPOLOGIES: AtomicUsize = AtomicUsize::new(0);

/// Which sites to build (see [`Topology::builder`]).
#[derive(Debug, Default)]
pub struct TopologyBuilder {
    sites: Vec<(SiteKind, usize)>,
}

impl TopologyBuilder {
    /// One more site of `kind` with `hosts` hosts (at least one; a public
    /// site's hosts each get a public address of their own).
    pub fn site(mut self, kind: SiteKind, hosts: usize) -> Self {
        self.sites.push((kind, hosts.max(1)));
        self
    }

    pub fn build(self) -> Result<Topology, NetnsError> {
        have("ip", "-V")?;
        have("iptables", "--version")?;
        let mut namespaces = Namespaces {
            prefix: format!(
                "tn{}x{}",
                std::process::id(),
                TOPOLOGIES.fetch_add(1, Ordering::Relaxed)
            ),
            made: Vec::new(),
        };
        let internet = namespaces.add("inet")?;
        ip_in(&internet, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(
            &internet,
            &["addr", "add", &format!("{INTERNET_IP}/24"), "dev", "br0"],
        )?;
        ip_in(&internet, &["link", "set", "br0", "up"])?;
        let mut segment = Segment {
            internet: internet.clone(),
            ports: 0,
            next_public: 10,
        };

        let hub_ns = namespaces.add("hub")?;
        segment.attach(&hub_ns, "eth0", HUB_IP)?;
        ip_in(
            &hub_ns,
            &["route", "add", "default", "via", &INTERNET_IP.to_string()],
        )?;

        let mut sites = Vec::new();
        for (index, (kind, hosts)) in self.sites.into_iter().enumerate() {
            let site = match kind {
                SiteKind::Public => {
                    let mut made = Vec::new();
                    for h in 0..hosts {
                        let ns = namespaces.add(&format!("s{index}h{h}"))?;
                        let ip = segment.next_public_ip()?;
                        segment.attach(&ns, "eth0", ip)?;
                        ip_in(
                            &ns,
                            &["route", "add", "default", "via", &INTERNET_IP.to_string()],
                        )?;
                        made.push(Host { netns: ns, ip });
                    }
                    Site {
                        kind,
                        public_ip: made[0].ip,
                        hosts: made,
                    }
                }
                SiteKind::Cone | SiteKind::Symmetric => {
                    let router = namespaces.add(&format!("s{index}r"))?;
                    let public_ip = segment.next_public_ip()?;
                    segment.attach(&router, "wan", public_ip)?;
                    ip_in(
                        &router,
                        &["route", "add", "default", "via", &INTERNET_IP.to_string()],
                    )?;
                    nat(&router, kind == SiteKind::Symmetric)?;
                    let hosts = lan(&mut namespaces, &router, index, hosts)?;
                    Site {
                        kind,
                        public_ip,
                        hosts,
                    }
                }
                SiteKind::DoubleNat => {
                    let carrier = namespaces.add(&format!("s{index}c"))?;
                    let public_ip = segment.next_public_ip()?;
                    segment.attach(&carrier, "wan", public_ip)?;
                    ip_in(
                        &carrier,
                        &["route", "add", "default", "via", &INTERNET_IP.to_string()],
                    )?;
                    nat(&carrier, false)?;
                    let home = namespaces.add(&format!("s{index}r"))?;
                    let octet = u8::try_from(index).map_err(|_| NetnsError::Setup {
                        command: "number the carrier networks".into(),
                        stderr: format!("site {index} is one too many"),
                    })?;
                    let (carrier_ip, home_ip) = (
                        Ipv4Addr::new(100, 64, octet, 1),
                        Ipv4Addr::new(100, 64, octet, 2),
                    );
                    veth(&carrier, "cgn", &home, "wan")?;
                    ip_in(
                        &carrier,
                        &["addr", "add", &format!("{carrier_ip}/24"), "dev", "cgn"],
                    )?;
                    ip_in(&carrier, &["link", "set", "cgn", "up"])?;
                    ip_in(
                        &home,
                        &["addr", "add", &format!("{home_ip}/24"), "dev", "wan"],
                    )?;
                    ip_in(&home, &["link", "set", "wan", "up"])?;
                    ip_in(
                        &home,
                        &["route", "add", "default", "via", &carrier_ip.to_string()],
                    )?;
                    nat(&home, false)?;
                    let hosts = lan(&mut namespaces, &home, index, hosts)?;
                    Site {
                        kind,
                        public_ip,
                        hosts,
                    }
                }
            };
            sites.push(site);
        }
        Ok(Topology {
            hub: Host {
                netns: hub_ns,
                ip: HUB_IP,
            },
            internet: Host {
                netns: internet,
                ip: INTERNET_IP,
            },
            sites,
            _namespaces: namespaces,
        })
    }
}

/// The public segment: the bridge in the internet namespace and the
/// addresses handed out on it.
struct Segment {
    internet: String,
    ports: usize,
    next_public: u8,
}

impl Segment {
    fn next_public_ip(&mut self) -> Result<Ipv4Addr, NetnsError> {
        let last = self.next_public;
        self.next_public =
            last.checked_add(1)
                .filter(|n| *n < 255)
                .ok_or_else(|| NetnsError::Setup {
                    command: "hand out public addresses".into(),
                    stderr: "the /24 is full".into(),
                })?;
        Ok(Ipv4Addr::new(198, 51, 100, last))
    }

    /// A veth from `ns` (named `dev`, holding `ip`/24) to a port of the
    /// bridge.
    fn attach(&mut self, ns: &str, dev: &str, ip: Ipv4Addr) -> Result<(), NetnsError> {
        let port = format!("p{}", self.ports);
        self.ports += 1;
        veth(ns, dev, &self.internet, &port)?;
        ip_in(&self.internet, &["link", "set", &port, "master", "br0"])?;
        ip_in(&self.internet, &["link", "set", &port, "up"])?;
        ip_in(ns, &["addr", "add", &format!("{ip}/24"), "dev", dev])?;
        ip_in(ns, &["link", "set", dev, "up"])
    }
}

/// A veth pair made directly inside its two namespaces.
fn veth(ns_a: &str, dev_a: &str, ns_b: &str, dev_b: &str) -> Result<(), NetnsError> {
    run(
        "ip",
        &[
            "link", "add", dev_a, "netns", ns_a, "type", "veth", "peer", "name", dev_b, "netns",
            ns_b,
        ],
    )
}

/// Makes `router` a NAT on its `wan`: forwarding on, outbound masqueraded
/// (`symmetric`: a random port for every new mapping), inbound (forwarded
/// or to the router itself) only as replies to what went out.
fn nat(router: &str, symmetric: bool) -> Result<(), NetnsError> {
    run(
        "ip",
        &[
            "netns",
            "exec",
            router,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ],
    )?;
    let mut masquerade = vec![
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-o",
        "wan",
        "-j",
        "MASQUERADE",
    ];
    if symmetric {
        masquerade.push("--random-fully");
    }
    iptables_in(router, &masquerade)?;
    iptables_in(
        router,
        &[
            "-A",
            "FORWARD",
            "-i",
            "wan",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ],
    )?;
    iptables_in(router, &["-A", "FORWARD", "-i", "wan", "-j", "DROP"])?;
    // The router's own ports are closed to the outside too, as on any home
    // router. This matters for hole punching, not only for tidiness: an
    // unsolicited packet accepted here would leave a conntrack entry for
    // (peer, router:port), and the host's own packet to that peer a moment
    // later would then be given another port — a cone turned symmetric.
    iptables_in(
        router,
        &[
            "-A",
            "INPUT",
            "-i",
            "wan",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ],
    )?;
    iptables_in(router, &["-A", "INPUT", "-i", "wan", "-j", "DROP"])
}

/// The LAN behind `router`: a bridge `lan` holding 10.(index+1).0.1, and
/// `count` hosts on it from .2 up, each routing through the router.
fn lan(
    namespaces: &mut Namespaces,
    router: &str,
    index: usize,
    count: usize,
) -> Result<Vec<Host>, NetnsError> {
    let net = u8::try_from(index + 1).map_err(|_| NetnsError::Setup {
        command: "number the LANs".into(),
        stderr: format!("site {index} is one too many"),
    })?;
    let gateway = Ipv4Addr::new(10, net, 0, 1);
    ip_in(router, &["link", "add", "lan", "type", "bridge"])?;
    ip_in(
        router,
        &["addr", "add", &format!("{gateway}/24"), "dev", "lan"],
    )?;
    ip_in(router, &["link", "set", "lan", "up"])?;
    let mut hosts = Vec::new();
    for h in 0..count {
        let ns = namespaces.add(&format!("s{index}h{h}"))?;
        let ip = Ipv4Addr::new(10, net, 0, 2 + h as u8);
        let port = format!("h{h}");
        veth(&ns, "eth0", router, &port)?;
        ip_in(router, &["link", "set", &port, "master", "lan"])?;
        ip_in(router, &["link", "set", &port, "up"])?;
        ip_in(&ns, &["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        ip_in(&ns, &["link", "set", "eth0", "multicast", "on"])?;
        ip_in(&ns, &["link", "set", "eth0", "up"])?;
        ip_in(
            &ns,
            &["route", "add", "default", "via", &gateway.to_string()],
        )?;
        hosts.push(Host { netns: ns, ip });
    }
    Ok(hosts)
}

/// The built internet: the hub's host, the sites in the order they were
/// asked for. Dropping it removes every namespace (stop the nodes in it
/// first: a namespace lingers while a process still runs inside).
pub struct Topology {
    pub hub: Host,
    pub internet: Host,
    pub sites: Vec<Site>,
    _namespaces: Namespaces,
}

impl Topology {
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::default()
    }

    /// The `n`th site of `kind` (0 for the first).
    pub fn site(&self, kind: SiteKind, n: usize) -> Option<&Site> {
        self.sites.iter().filter(|s| s.kind == kind).nth(n)
    }
}

/// Builds the topology, or, on a machine that cannot, says so and returns
/// `None` — outside CI only: CI runs as root with the tools installed,
/// and a test that cannot run there fails.
pub fn build_or_skip(builder: TopologyBuilder) -> Option<Topology> {
    match builder.build() {
        Ok(topology) => Some(topology),
        Err(NetnsError::Unavailable { what, reason }) => {
            skip_outside_ci(&format!("cannot {what} here ({reason})"));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Prints why a test does not run; fails instead when under CI.
pub fn skip_outside_ci(reason: &str) {
    eprintln!("SKIPPED: {reason}");
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must be able to run the NAT tests: {reason}"
    );
}
