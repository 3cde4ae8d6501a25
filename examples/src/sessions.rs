//! Clickstream sessions: each user's page views grouped into sessions that end after 30
//! minutes without a view, with the session's length, pages, landing page and whether it
//! bounced (one page only).
//!
//! ```text
//! page views -> key by user -> session windows (30 min gap) -> (Count, First) -> sessions
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::aggregate::{Count, First};
use weir::operators::window::{session, WindowExt};
use weir::{EventTime, KeyedOutput, Stream, Timestamped};

use crate::io::{any, SampleLine, SAMPLE_START};
use crate::random::SampleRng;
use crate::registry::Example;

/// The silence that ends a session.
pub const GAP: Duration = Duration::from_secs(30 * 60);
/// How far behind the newest view one may arrive and still join its session.
pub const DISORDER: Duration = Duration::from_secs(30);

/// One page view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageView {
    /// Who viewed it.
    pub user: String,
    /// The page.
    pub url: String,
    /// When.
    #[serde(with = "serde_millis")]
    pub time: EventTime,
}

impl Timestamped for PageView {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

/// One user's session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub user: String,
    /// The first view.
    #[serde(with = "serde_millis")]
    pub start: EventTime,
    /// The last view.
    #[serde(with = "serde_millis")]
    pub last_view: EventTime,
    /// From the first view to the last, in seconds.
    pub duration_s: u64,
    /// Pages viewed.
    pub pages: u64,
    /// The first page viewed.
    pub landing_page: String,
    /// Whether the user left after one page.
    pub bounce: bool,
}

/// Each user's sessions, emitted once 30 minutes have passed without a view; a view whose
/// session has been emitted is late.
pub fn sessions<'s>(views: Stream<'s, PageView>) -> KeyedOutput<'s, Session, PageView> {
    let windows = views
        .key_by(|view| view.user.clone())
        .window(session(GAP))
        .aggregate((Count, First));
    KeyedOutput {
        results: windows.results.map(|window| {
            let (pages, first) = window.value;
            // A session window ends one gap after its last view.
            let last_view = EventTime(window.end.millis() - GAP.as_millis() as u64);
            Session {
                user: window.key,
                start: window.start,
                last_view,
                duration_s: (last_view.millis() - window.start.millis()) / 1000,
                pages,
                landing_page: first.map(|view| view.url).unwrap_or_default(),
                bounce: pages == 1,
            }
        }),
        late: windows.late,
    }
}

/// `sessions` in the registry.
pub const SESSIONS: Example = Example {
    name: "sessions",
    about: "Clickstream sessions per user (30-minute gap): length, pages, landing page, bounce.",
    shows: "key_by, session windows, a pair of aggregations (Count, First), late output",
    results: "{user, start, last_view, duration_s, pages, landing_page, bounce} per session; \
              views arriving after their session was emitted go to the late output",
    build: |p, input, output| {
        let sessions = sessions(input.read(p, DISORDER, any));
        output.append(sessions.results);
        output.late(sessions.late);
    },
    sample,
};

const PAGES: &[&str] = &[
    "/",
    "/search",
    "/product/17",
    "/product/42",
    "/product/99",
    "/cart",
    "/checkout",
    "/help",
];

/// Page views of `records / 25` users (at least one), each in bursts of 1 to 10 views a few
/// seconds to two minutes apart, bursts 31 to 150 minutes apart. One view in ten arrives up
/// to 20 s late, one in two hundred 45 minutes late (after its session has closed).
fn sample(seed: u64, records: u64) -> Vec<SampleLine> {
    let mut rng = SampleRng::new(seed);
    let users = (records / 25).max(1);
    // (arrival time, view)
    let mut views: Vec<(u64, PageView)> = Vec::new();
    for user in 0..users {
        let mut now = SAMPLE_START.millis() + rng.below(3_600_000);
        let mut left = records / users + u64::from(user < records % users);
        while left > 0 {
            let burst = (1 + rng.below(10)).min(left);
            for _ in 0..burst {
                now += 1 + rng.below(120_000);
                let delay = if rng.percent(1) && rng.percent(50) {
                    45 * 60_000
                } else if rng.percent(10) {
                    rng.below(20_000)
                } else {
                    0
                };
                let view = PageView {
                    user: format!("user-{user}"),
                    url: (*rng.pick(PAGES)).to_owned(),
                    time: EventTime(now),
                };
                views.push((now + delay, view));
            }
            left -= burst;
            now += 31 * 60_000 + rng.below(120 * 60_000);
        }
    }
    views.sort_by_key(|(arrival, view)| (*arrival, view.user.clone()));
    views
        .iter()
        .map(|(_, view)| SampleLine::json(&view.user, view))
        .collect()
}
