//! How a phone's state follows its events: the call state machine, DND, forwards, mute and
//! registration. Pure functions, the same for every vendor, since events are normalised.

use crate::model::{CallState, Effect, Event, ForwardKind, Line, PhoneState};
use crate::phone_vendors::Refreshed;

/// Applies one event to a phone's state.
pub fn apply(state: &mut PhoneState, event: &Event) {
    state.last_event = Some(event.event);
    state.last_seen = Some(event.ts.clone());
    let call = |state: &mut PhoneState, call_state: CallState| {
        state.call_state = call_state;
        if event.remote.is_some() {
            state.remote = event.remote.clone();
        }
        if event.remote_name.is_some() {
            state.remote_name = event.remote_name.clone();
        }
        if event.call_id.is_some() {
            state.call_id = event.call_id.clone();
        }
    };
    match event.event.effect() {
        Effect::None => {}
        Effect::NewCall(call_state) => {
            // A new call replaces whatever the last one left behind.
            state.remote = None;
            state.remote_name = None;
            state.call_id = None;
            call(state, call_state)
        }
        Effect::CallIf { from, .. } if state.call_state != from => {}
        Effect::Call(CallState::Idle)
        | Effect::CallIf {
            to: CallState::Idle,
            ..
        } => idle(state),
        Effect::Call(call_state) | Effect::CallIf { to: call_state, .. } => call(state, call_state),
        Effect::Dnd(on) => state.dnd = on,
        Effect::Forward(on) => match event.forward {
            Some(ForwardKind::Busy) => state.forward.busy = on,
            Some(ForwardKind::NoAnswer) => state.forward.no_answer = on,
            Some(ForwardKind::Always) | None => state.forward.always = on,
        },
        Effect::Mute(on) => state.muted = on,
        Effect::Registration(registered) => {
            state.registered = Some(registered);
            if let Some(user) = &event.line {
                match state.lines.iter_mut().find(|line| &line.user == user) {
                    Some(line) => line.registered = registered,
                    None => state.lines.push(Line {
                        line: state.lines.len() as u32 + 1,
                        user: user.clone(),
                        registered,
                    }),
                }
            }
        }
        Effect::Booted => {
            // A phone that just booted has no call and has not registered yet.
            idle(state);
            state.muted = false;
        }
    }
}

/// The call ended without the phone saying so (a silent reject).
pub fn end_call(state: &mut PhoneState) {
    idle(state);
}

fn idle(state: &mut PhoneState) {
    state.call_state = CallState::Idle;
    state.remote = None;
    state.remote_name = None;
    state.call_id = None;
    state.muted = false;
}

/// Applies what `refresh` read from the phone.
pub fn apply_refresh(state: &mut PhoneState, refreshed: &Refreshed) {
    if let Some(dnd) = refreshed.dnd {
        state.dnd = dnd;
    }
    if !refreshed.lines.is_empty() {
        state.lines = refreshed.lines.clone();
        state.registered = Some(refreshed.lines.iter().any(|line| line.registered));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, PhoneId};

    fn event(kind: EventKind) -> Event {
        Event {
            event: kind,
            phone: PhoneId::parse("0015654aa937").unwrap(),
            ts: "2026-11-26T10:00:00Z".into(),
            remote: Some("+4930123456".into()),
            remote_name: Some("Anna Schmidt".into()),
            local: None,
            call_id: Some("1".into()),
            line: Some("1001".into()),
            key: None,
            label: None,
            forward: None,
            vars: Default::default(),
        }
    }

    #[test]
    fn a_call_rings_talks_holds_and_ends() {
        let mut state = PhoneState::default();
        apply(&mut state, &event(EventKind::IncomingCall));
        assert_eq!(state.call_state, CallState::Ringing);
        assert_eq!(state.remote.as_deref(), Some("+4930123456"));
        apply(&mut state, &event(EventKind::CallEstablished));
        assert_eq!(state.call_state, CallState::Talking);
        apply(&mut state, &event(EventKind::Hold));
        assert_eq!(state.call_state, CallState::Held);
        apply(&mut state, &event(EventKind::Unhold));
        assert_eq!(state.call_state, CallState::Talking);
        apply(&mut state, &event(EventKind::CallTerminated));
        assert_eq!(state.call_state, CallState::Idle);
        assert_eq!(state.remote, None);
        assert_eq!(state.last_event, Some(EventKind::CallTerminated));
    }

    #[test]
    fn dnd_forward_and_registration() {
        let mut state = PhoneState::default();
        apply(&mut state, &event(EventKind::DndOn));
        assert!(state.dnd);
        let mut fwd = event(EventKind::ForwardOn);
        fwd.forward = Some(ForwardKind::Busy);
        apply(&mut state, &fwd);
        assert!(state.forward.busy && !state.forward.always);
        apply(&mut state, &event(EventKind::Registered));
        assert_eq!(state.registered, Some(true));
        assert_eq!(state.lines.len(), 1);
        apply(&mut state, &event(EventKind::Unregistered));
        assert_eq!(state.registered, Some(false));
        assert_eq!(state.lines.len(), 1);
        assert!(!state.lines[0].registered);
    }
}
