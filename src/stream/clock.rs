//! The stream's event-time clock: tumbling windows, the watermark, late
//! events and when each window closes, plus the pacing schedule. One pass
//! over the events in arrival order, before any state is touched, so every
//! worker knows each event's window and lateness up front.
//!
//! - An event belongs to the tumbling window `[start, start + width)` with
//!   `start = ⌊event_time / width⌋ · width` (aligned to the Unix epoch, as
//!   Spark's `window()`).
//! - The watermark is the latest event time seen so far (in arrival order)
//!   minus `watermark`. An event whose time is older than the watermark
//!   *before it arrived* is late.
//! - A window closes at the first arrival that moves the watermark to or
//!   past its end: every later event of that window is late by definition.
//!   Windows still open after the last event close at the end.
//! - Pacing: an event is released `(stream time − first event time) /
//!   speed` after the start, where the stream time is the latest event time
//!   seen so far, so releases never go backwards even when event times do.

use std::collections::{BTreeMap, HashMap};

/// The start of the window of `time` (both in microseconds).
pub fn window_start(time: i64, width: i64) -> i64 {
    time.div_euclid(width) * width
}

/// What the clock says about one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Dense index of the event's window (in order of first appearance).
    pub window: u32,
    pub late: bool,
    /// Nanoseconds after the start at which the event is released (0 when
    /// not paced).
    pub release_ns: u64,
}

/// A window and when it closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    /// Arrival position (0-based) of the event whose time closed the
    /// window; `None`: still open after the last event.
    pub closed_by: Option<usize>,
}

/// The clock's verdict on a whole stream.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    pub ticks: Vec<Tick>,
    pub windows: Vec<Window>,
}

/// Runs the clock over event times in arrival order. `width` and
/// `watermark` are microseconds (`width > 0`, `watermark >= 0`); `speed`
/// 0 means no pacing.
pub fn schedule(times: &[i64], width: i64, watermark: i64, speed: f64) -> anyhow::Result<Schedule> {
    anyhow::ensure!(
        width > 0 && watermark >= 0,
        "window must be positive and watermark not negative"
    );
    let mut ticks = Vec::new();
    ticks
        .try_reserve_exact(times.len())
        .map_err(|_| anyhow::anyhow!("not enough memory for {} events", times.len()))?;
    let mut windows: Vec<Window> = Vec::new();
    let mut index: HashMap<i64, u32> = HashMap::new();
    // Open windows by start, so they close in order as the watermark moves.
    let mut open: BTreeMap<i64, u32> = BTreeMap::new();
    let mut latest: Option<i64> = None;
    let first = times.first().copied().unwrap_or(0);
    // The previous event's window: most events share it, and then it is
    // found (and, while open, already in `open`) without a lookup.
    let mut previous: Option<(i64, u32)> = None;
    for (at, &time) in times.iter().enumerate() {
        let late = latest.is_some_and(|l| time < l.saturating_sub(watermark));
        let start = window_start(time, width);
        let window = match previous {
            Some((s, w)) if s == start => w,
            _ => {
                let window = *index.entry(start).or_insert_with(|| {
                    windows.push(Window {
                        start,
                        end: start.saturating_add(width),
                        closed_by: None,
                    });
                    (windows.len() - 1) as u32
                });
                if windows[window as usize].closed_by.is_none() {
                    open.insert(start, window);
                }
                previous = Some((start, window));
                window
            }
        };
        let now = latest.map_or(time, |l| l.max(time));
        latest = Some(now);
        let mark = now.saturating_sub(watermark);
        while let Some((&s, &w)) = open.first_key_value() {
            if windows[w as usize].end > mark {
                break;
            }
            windows[w as usize].closed_by = Some(at);
            open.remove(&s);
        }
        let release_ns = if speed > 0.0 {
            ((now - first) as f64 * 1000.0 / speed).max(0.0) as u64
        } else {
            0
        };
        ticks.push(Tick {
            window,
            late,
            release_ns,
        });
    }
    Ok(Schedule { ticks, windows })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn windows_align_to_the_epoch_also_before_it() {
        assert_eq!(window_start(7 * MIN + 5, 5 * MIN), 5 * MIN);
        assert_eq!(window_start(5 * MIN, 5 * MIN), 5 * MIN);
        assert_eq!(window_start(-1, 5 * MIN), -5 * MIN);
    }

    /// 5-minute windows, 10-minute watermark. Times in minutes, in arrival
    /// order: 0, 3, 6, 16 (watermark 6: window [0,5) closes), 4 (late:
    /// 4 < 6), 14 (window [10,15)), 21 (watermark 11: [5,10) closes), 9
    /// (late), 12 (not late: 12 >= 11).
    #[test]
    fn late_events_and_closing_follow_the_watermark() {
        let times: Vec<i64> = [0, 3, 6, 16, 4, 14, 21, 9, 12]
            .iter()
            .map(|m| m * MIN)
            .collect();
        let s = schedule(&times, 5 * MIN, 10 * MIN, 0.0).unwrap();
        let late: Vec<bool> = s.ticks.iter().map(|t| t.late).collect();
        assert_eq!(
            late,
            [false, false, false, false, true, false, false, true, false]
        );
        let windows: Vec<u32> = s.ticks.iter().map(|t| t.window).collect();
        assert_eq!(windows, [0, 0, 1, 2, 0, 3, 4, 1, 3]);
        let closed: Vec<(i64, Option<usize>)> = s
            .windows
            .iter()
            .map(|w| (w.start / MIN, w.closed_by))
            .collect();
        assert_eq!(
            closed,
            [
                (0, Some(3)),
                (5, Some(6)),
                (15, None),
                (10, None),
                (20, None)
            ]
        );
        assert!(s.ticks.iter().all(|t| t.release_ns == 0));
    }

    /// The clock on random streams (runs of one window, late events,
    /// jumps) against the rule written out directly: each window closes
    /// at the first event whose watermark passes its end.
    #[test]
    fn schedule_equals_the_rule_on_random_streams() {
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..200 {
            let mut t = 0i64;
            let times: Vec<i64> = (0..300)
                .map(|_| {
                    t += (rng.next_u64() % 3) as i64 * MIN / 2;
                    if rng.next_u64().is_multiple_of(10) {
                        t - (rng.next_u64() % 30) as i64 * MIN
                    } else {
                        t
                    }
                })
                .collect();
            let s = schedule(&times, 5 * MIN, 10 * MIN, 0.0).unwrap();
            let mut latest = i64::MIN;
            for (at, &time) in times.iter().enumerate() {
                let w = &s.windows[s.ticks[at].window as usize];
                assert!(w.start <= time && time < w.end);
                assert_eq!(
                    s.ticks[at].late,
                    latest != i64::MIN && time < latest - 10 * MIN
                );
                latest = latest.max(time);
            }
            for w in &s.windows {
                let first_seen = times
                    .iter()
                    .position(|&t| window_start(t, 5 * MIN) == w.start)
                    .unwrap();
                let mut mark = i64::MIN;
                let mut closed = None;
                for (at, &time) in times.iter().enumerate() {
                    mark = mark.max(time - 10 * MIN);
                    if at >= first_seen && mark >= w.end {
                        closed = Some(at);
                        break;
                    }
                }
                assert_eq!(w.closed_by, closed, "window at {}", w.start / MIN);
            }
        }
    }

    #[test]
    fn pacing_follows_the_stream_time_and_never_goes_back() {
        // At 60x, one minute of event time is released after one second.
        let times: Vec<i64> = [0, 2, 1, 3].iter().map(|m| m * MIN).collect();
        let s = schedule(&times, 5 * MIN, 10 * MIN, 60.0).unwrap();
        let release: Vec<u64> = s.ticks.iter().map(|t| t.release_ns).collect();
        assert_eq!(release, [0, 2_000_000_000, 2_000_000_000, 3_000_000_000]);
        assert!(schedule(&times, 0, 0, 0.0).is_err());
    }
}
