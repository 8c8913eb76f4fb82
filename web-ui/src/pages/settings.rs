//! The Settings page: identity, where the data lives and how much room it
//! takes, and the hub for reaching peers across the internet.

use maud::{Markup, html};
use tandem_protocol::api::{DiskUsage, IdentityInfo, Settings};

use crate::layout::{size, status};

pub fn page(me: &IdentityInfo, usage: Option<&DiskUsage>, settings: &Settings) -> Markup {
    html! {
        section.card #identity {
            h1 { "Settings" }
            h2 { "Identity" }
            form.inline data-api="/api/identity" data-method="PUT" data-busy="Saving…" {
                label { "Name" input name="name" value=(me.name) required maxlength="100"; }
                label { "Email" input name="email" type="email" data-keep-empty value=(me.email) maxlength="200"; }
                button type="submit" { "Save" }
            }
            (status())
            p.keyline { "Key: " code { (me.did) } button.quiet data-copy=(me.did) { "Copy" } }
            p.muted { "Your name labels your work; your key is what grants and signatures refer to." }
        }
        section.card #storage {
            h2 { "Data" }
            @if let Some(u) = usage {
                p { "Data folder: " code { (u.home) } }
                table {
                    thead { tr { th { "Project" } th { "Tracked" } th { "Large, here" } th { "Large, on peers" } th.hide-small { "Old versions" } } }
                    tbody {
                        @for p in &u.projects {
                            tr { td { (p.name) } td { (size(p.tracked_bytes)) } td { (size(p.large_local_bytes)) }
                                 td { (size(p.large_remote_bytes)) } td.hide-small { (size(p.old_version_bytes)) } }
                        }
                    }
                }
                p.muted { "Blob store in all: " (size(u.store_bytes)) ". Free room with `tandem evict`." }
            } @else {
                p.muted { "Disk use could not be read." }
            }
        }
        section.card #relay {
            h2 { "Hub" }
            p.muted { "For peers behind NAT across the internet: a hub (`tandem hub` on a machine with a public address) keeps a relay slot for this node, finds peers by key, relays large files when NATs allow no direct path, and tries to connect peers directly. Not needed on a LAN; if the hub is down, nothing else changes." }
            form.inline data-api="/api/settings" data-method="PUT" data-busy="Saving…" {
                label.grow { "Address" input name="relay" data-keep-empty value=(settings.relay.clone().unwrap_or_default()) placeholder="/dns4/hub.example.org/tcp/4001/p2p/12D3KooW…"; }
                button type="submit" { "Save" }
            }
            (status())
        }
    }
}
