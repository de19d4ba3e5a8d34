//! The messages a session has taken from its outbox and the broker has not acknowledged yet.
//!
//! rumqttc numbers a publish (its packet id) only when it writes it, in the order it was
//! handed over, and reports each write (`Outgoing::Publish(pkid)`) and each acknowledgement
//! (`Incoming::PubAck`). So a handed message gets its packet id from the first write report
//! that does not name a packet id in flight already (those are rewrites after a reconnect with
//! a kept session), and leaves on its PUBACK. If the connection is lost and the broker kept no
//! session, rumqttc forgets what it held: the session task puts it all back in the outbox.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

use super::outbox::Entry;

/// Messages handed to rumqttc at most: below its own in-flight limit (100), so that its flow
/// control never holds a message we count as on its way.
pub const WINDOW: usize = 64;

/// A message on its way, and its number in the outbox (to go back in its place).
type Numbered = (u64, Entry);

#[derive(Debug, Default)]
pub struct Flight {
    /// Handed to rumqttc, not yet written, in the order handed.
    handed: VecDeque<Numbered>,
    /// Written, by packet id, with the time of the last write on this connection (`None`:
    /// not written again since the connection was lost).
    written: HashMap<u16, (Numbered, Option<Instant>)>,
    /// When a ping went unanswered so far.
    ping: Option<Instant>,
}

impl Flight {
    pub fn len(&self) -> usize {
        self.handed.len() + self.written.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_room(&self) -> bool {
        self.len() < WINDOW
    }

    pub fn handed(&mut self, message: Numbered) {
        self.handed.push_back(message);
    }

    /// rumqttc wrote packet `pkid`. `false`: it was not ours to track (nothing handed).
    pub fn written(&mut self, pkid: u16, now: Instant) -> bool {
        if let Some((_, at)) = self.written.get_mut(&pkid) {
            *at = Some(now);
            return true;
        }
        match self.handed.pop_front() {
            Some(message) => {
                self.written.insert(pkid, (message, Some(now)));
                true
            }
            None => false,
        }
    }

    /// The broker acknowledged packet `pkid`: that message is delivered.
    pub fn acknowledged(&mut self, pkid: u16) -> Option<Entry> {
        self.written.remove(&pkid).map(|((_, entry), _)| entry)
    }

    pub fn ping_sent(&mut self, now: Instant) {
        self.ping.get_or_insert(now);
    }

    pub fn pong(&mut self) {
        self.ping = None;
    }

    /// Since when the broker owes an answer (the oldest unacknowledged write or ping on this
    /// connection).
    pub fn owed_since(&self) -> Option<Instant> {
        self.written
            .values()
            .filter_map(|(_, at)| *at)
            .chain(self.ping)
            .min()
    }

    /// The connection was lost: nothing is owed on it any more. What was written stays, for
    /// rumqttc to write again if the broker kept the session.
    pub fn connection_lost(&mut self) {
        self.ping = None;
        for (_, at) in self.written.values_mut() {
            *at = None;
        }
    }

    /// Everything on its way, oldest first: the broker kept no session, or the session ends.
    pub fn take_all(&mut self) -> Vec<Numbered> {
        let mut all: Vec<Numbered> = self
            .written
            .drain()
            .map(|(_, (message, _))| message)
            .chain(self.handed.drain(..))
            .collect();
        all.sort_by_key(|(number, _)| *number);
        self.ping = None;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::outbox::Class;

    fn message(n: u64) -> Numbered {
        (
            n,
            Entry::new(format!("t/{n}"), bytes::Bytes::new(), false, Class::Event),
        )
    }

    #[test]
    fn handed_messages_take_packet_ids_in_order_and_leave_on_their_ack() {
        let now = Instant::now();
        let mut flight = Flight::default();
        flight.handed(message(1));
        flight.handed(message(2));
        assert!(flight.written(7, now));
        assert!(flight.written(8, now));
        assert!(!flight.written(9, now), "nothing was handed for 9");
        assert_eq!(flight.acknowledged(8).unwrap().topic, "t/2");
        assert_eq!(flight.owed_since(), Some(now));
        assert_eq!(flight.acknowledged(7).unwrap().topic, "t/1");
        assert!(flight.is_empty());
        assert_eq!(flight.owed_since(), None);
    }

    #[test]
    fn a_rewrite_after_a_kept_session_is_not_a_new_message() {
        let now = Instant::now();
        let mut flight = Flight::default();
        flight.handed(message(1));
        flight.handed(message(2));
        flight.written(1, now);
        flight.connection_lost();
        assert_eq!(
            flight.owed_since(),
            None,
            "nothing is owed on a lost connection"
        );
        flight.written(1, now);
        flight.written(2, now);
        assert_eq!(flight.acknowledged(2).unwrap().topic, "t/2");
    }

    #[test]
    fn all_in_flight_comes_back_oldest_first() {
        let now = Instant::now();
        let mut flight = Flight::default();
        for n in 1..=4 {
            flight.handed(message(n));
        }
        flight.written(40, now);
        flight.written(30, now);
        flight.ping_sent(now);
        let numbers: Vec<u64> = flight.take_all().into_iter().map(|(n, _)| n).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        assert!(flight.is_empty());
        assert_eq!(flight.owed_since(), None);
    }
}
