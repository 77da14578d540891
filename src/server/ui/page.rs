//! The dashboard's markup, written with maud: the page is a shell (headings, tabs, forms,
//! empty tables, a dialog) that the script fills from the admin JSON API; nothing of the
//! engine's state is rendered here. Only the API's title is, so the page names its API
//! before the first fetch.

use maud::{DOCTYPE, Markup, html};

use super::assets::{CSS_PATH, JS_PATH};

/// One tab: its id (`tab-<id>`, panel `panel-<id>`) and label.
const TABS: &[(&str, &str)] = &[
    ("overview", "Overview"),
    ("records", "Records"),
    ("journal", "Journal"),
    ("events", "Events & webhooks"),
    ("controls", "Controls"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · sandbox dashboard" }
            // No icon: otherwise the browser asks the API's port for /favicon.ico, and the
            // journal shows a request nobody made.
            link rel="icon" href="data:,";
            link rel="stylesheet" href=(CSS_PATH);
            script src=(JS_PATH) defer {}
        }
    }
}

/// The dashboard of the API called `title`.
pub fn dashboard(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    div {
                        h1 { (title) }
                        p.sub #meta { "Loading…" }
                    }
                    p.live #live role="status" { "connecting…" }
                }
                div.layout {
                    main {
                        nav role="tablist" aria-label="Dashboard sections" {
                            @for (i, (id, label)) in TABS.iter().enumerate() {
                                button type="button" role="tab" id={ "tab-" (id) }
                                    aria-controls={ "panel-" (id) }
                                    aria-selected=(if i == 0 { "true" } else { "false" })
                                    tabindex=(if i == 0 { "0" } else { "-1" }) { (label) }
                            }
                        }
                        (overview())
                        (records())
                        (journal())
                        (events())
                        (controls())
                    }
                    (clock())
                }
                p #message role="alert" {}
                dialog #detail aria-labelledby="detail-title" {
                    div.dialog-head {
                        h2 #detail-title {}
                        form method="dialog" { button type="submit" { "Close" } }
                    }
                    div #detail-body {}
                }
            }
        }
    }
}

fn panel(id: &str, body: Markup) -> Markup {
    html! {
        section role="tabpanel" id={ "panel-" (id) } aria-labelledby={ "tab-" (id) }
            hidden[id != TABS[0].0] { (body) }
    }
}

/// A table with a caption-like heading and an empty body the script fills.
fn table(id: &str, label: &str, columns: &[&str]) -> Markup {
    html! {
        div.scroll {
            table #(id) aria-label=(label) {
                thead { tr { @for c in columns { th scope="col" { (c) } } } }
                tbody {}
            }
        }
    }
}

fn overview() -> Markup {
    panel(
        "overview",
        html! {
            h2 { "Overview" }
            dl #info {}
            h3 { "Records per tenant" }
            div #counts {}
        },
    )
}

fn records() -> Markup {
    panel(
        "records",
        html! {
            h2 { "Records" }
            form.filters #record-filters role="search" {
                label { "Tenant " select #record-tenant name="tenant" { option value="" { "all tenants" } } }
                label { "Resource " select #record-resource name="resource" {} }
                label { "Search " input #record-search type="search" name="q" placeholder="any value"; }
            }
            (table("records-table", "Records", &["ID", "Tenant", "State", "Members"]))
        },
    )
}

fn journal() -> Markup {
    panel(
        "journal",
        html! {
            h2 { "Journal" }
            p.hint { "Every request the API answered, newest first. Open one for its headers and bodies." }
            form.filters #journal-filters role="search" {
                label { "Status " select #journal-status name="status" {
                    option value="" { "any" }
                    @for c in ["2xx", "3xx", "4xx", "5xx"] { option value=(c) { (c) } }
                } }
                label { "Tenant " select #journal-tenant name="tenant" { option value="" { "all tenants" } } }
                label { "Path contains " input #journal-path type="search" name="path"; }
            }
            (table("journal-table", "Requests", &["Time", "Method", "Path", "Operation", "Tenant", "Status", "Latency", "Verdict"]))
        },
    )
}

fn events() -> Markup {
    panel(
        "events",
        html! {
            h2 { "Events" }
            (table("events-table", "Events", &["#", "Time", "Type", "Tenant", "Object"]))
            h2 { "Webhook deliveries" }
            (table("deliveries-table", "Webhook deliveries", &["Event", "URL", "Status", "Attempts", "Response", "Last error", ""]))
        },
    )
}

fn controls() -> Markup {
    panel(
        "controls",
        html! {
            h2 { "Controls" }
            div.cards {
                section.card aria-labelledby="reset-h" {
                    h3 #reset-h { "Reset" }
                    button type="button" #reset-all.danger { "Reset all state" }
                    form #reset-tenant-form {
                        label { "Tenant " select #reset-tenant name="tenant" required {} }
                        button type="submit" { "Reset this tenant" }
                    }
                }
                section.card aria-labelledby="state-h" {
                    h3 #state-h { "Export and import" }
                    p { a href="/__sandbox/state" download="sandbox-state.json" { "Download the state (JSON)" } }
                    form #import-form {
                        label { "State file " input #import-file type="file" name="file" accept="application/json,.json" required; }
                        button type="submit" { "Import" }
                    }
                }
            }
            h3 { "Scenarios" }
            p.hint { "Send " code { "X-Sandbox-Scenario: NAME" } " to answer with a preset error, or to pick a lifecycle branch." }
            (table("presets-table", "Error presets", &["Scenario", "Status", "Message"]))
            (table("branches-table", "Lifecycle branches", &["Scenarios", "Resource", "Transition"]))
        },
    )
}

fn clock() -> Markup {
    html! {
        aside.clock aria-labelledby="clock-h" {
            h2 #clock-h { "Clock" }
            p.time #clock-time aria-live="polite" { "…" }
            p #clock-mode {}
            div.buttons {
                button type="button" #clock-freeze { "Freeze" }
                button type="button" #clock-resume { "Resume" }
            }
            div.buttons role="group" aria-label="Advance the clock" {
                button type="button" data-advance="60" { "+1 min" }
                button type="button" data-advance="3600" { "+1 h" }
                button type="button" data-advance="86400" { "+1 day" }
            }
            form #advance-form {
                label for="advance-amount" { "Advance by" }
                div.row {
                    input #advance-amount name="amount" inputmode="decimal" size="6" required;
                    label.visually-hidden for="advance-unit" { "Unit" }
                    select #advance-unit name="unit" {
                        option value="1" { "seconds" }
                        option value="60" { "minutes" }
                        option value="3600" { "hours" }
                        option value="86400" { "days" }
                    }
                    button type="submit" { "Advance" }
                }
            }
            h3 { "Became due" }
            div #due aria-live="polite" { p.hint { "Advance the clock to see what moves." } }
        }
    }
}

/// The page shown instead of the dashboard when the admin token is missing or wrong.
pub fn locked() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Sandbox dashboard: token required" } }
            body {
                h1 { "Token required" }
                p { "This sandbox listens beyond loopback, so its dashboard needs the admin token. \
                     Open the dashboard URL that " code { "sandbox serve" } " printed at start \
                     (it ends in " code { "?token=…" } "), or pass " code { "--admin-token" } "." }
            }
        }
    }
}
