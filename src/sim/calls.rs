//! The call state machine every simulated phone shares, and how an Action URI request is
//! carried out: access, parse, act, reply.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::info;

use super::personality::{AccessCtx, Action, Reply, Request};
use super::phone::SimPhone;
use crate::model::CallState;

impl SimPhone {
    /// An incoming call from `number` (shown as `name`).
    pub fn ring(&self, number: &str, name: Option<&str>) -> Result<(), String> {
        {
            let mut state = self.lock();
            if state.call_state != CallState::Idle {
                return Err("the phone is busy".into());
            }
            if state.dnd {
                return Err("do-not-disturb is on: the call is refused".into());
            }
            state.call_state = CallState::Ringing;
            state.remote = Some(number.to_string());
            state.remote_name = name.map(str::to_string);
            state.call_id = Some(state.next_call_id);
            state.next_call_id += 1;
        }
        self.fire("incoming_call");
        Ok(())
    }

    /// The far end answers our outgoing call.
    pub fn remote_answer(&self) -> Result<(), String> {
        {
            let mut state = self.lock();
            if state.call_state != CallState::Dialing {
                return Err("no outgoing call to answer".into());
            }
            state.call_state = CallState::Talking;
        }
        self.fire("call_established");
        Ok(())
    }

    /// The far end hangs up (or gives up while we ring).
    pub fn remote_hangup(&self) -> Result<(), String> {
        let was = self.lock().call_state;
        match was {
            CallState::Ringing => {
                self.fire("remote_cancelled");
                self.fire("missed_call");
            }
            CallState::Talking | CallState::Held | CallState::Dialing => {
                self.fire("call_terminated")
            }
            CallState::Idle => return Err("no call".into()),
        }
        self.go_idle();
        Ok(())
    }

    /// Someone at the phone picks up the ringing call.
    pub fn local_answer(&self) -> Result<(), String> {
        self.apply(&Action::Answer);
        (self.lock().call_state == CallState::Talking)
            .then_some(())
            .ok_or_else(|| "nothing to answer".into())
    }

    /// Someone at the phone presses OK on the "Allow remote control?" prompt.
    pub fn confirm_remote_control(&self) {
        let mut state = self.lock();
        state.confirmed = true;
        state.prompt_pending = false;
    }

    /// The call is over: back to idle, nobody on the line.
    pub(super) fn go_idle(&self) {
        let mut state = self.lock();
        state.call_state = CallState::Idle;
        state.remote = None;
        state.remote_name = None;
        state.call_id = None;
        state.muted = false;
    }

    /// Carries out one action as the phone would, firing the events a real one fires.
    pub(super) fn apply(&self, action: &Action) {
        let call_state = self.lock().call_state;
        match action {
            Action::Dial(number) => {
                if call_state != CallState::Idle {
                    return;
                }
                {
                    let mut state = self.lock();
                    state.call_state = CallState::Dialing;
                    state.remote = Some(number.clone());
                    state.remote_name = None;
                    state.call_id = Some(state.next_call_id);
                    state.next_call_id += 1;
                }
                self.fire("outgoing_call");
                if let Some(delay) = self.inner.options.remote_answers_after {
                    let phone = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = phone.remote_answer();
                    });
                }
            }
            Action::Answer => {
                if call_state == CallState::Ringing {
                    self.lock().call_state = CallState::Talking;
                    self.fire("call_established");
                }
            }
            Action::Hangup => match call_state {
                CallState::Talking | CallState::Held | CallState::Dialing => {
                    self.fire("call_terminated");
                    self.go_idle();
                }
                CallState::Ringing => {
                    self.fire("call_rejected");
                    self.go_idle();
                }
                CallState::Idle => {}
            },
            Action::Reject => match call_state {
                CallState::Ringing => {
                    self.fire("call_rejected");
                    self.go_idle();
                }
                CallState::Dialing => {
                    self.fire("call_cancelled");
                    self.go_idle();
                }
                _ => {}
            },
            Action::ToggleHold => match call_state {
                CallState::Talking => self.apply(&Action::Hold),
                CallState::Held => self.apply(&Action::Resume),
                _ => {}
            },
            Action::Hold => {
                if call_state == CallState::Talking {
                    self.lock().call_state = CallState::Held;
                    self.fire("hold");
                }
            }
            Action::Resume => {
                if call_state == CallState::Held {
                    self.lock().call_state = CallState::Talking;
                    self.fire("unhold");
                }
            }
            Action::Transfer(_) => {
                if matches!(call_state, CallState::Talking | CallState::Held) {
                    self.fire("blind_transfer");
                    self.fire("call_terminated");
                    self.go_idle();
                }
            }
            Action::Dnd(on) => {
                self.lock().dnd = *on;
                self.fire(if *on { "dnd_on" } else { "dnd_off" });
            }
            Action::ToggleDnd => {
                let on = !self.lock().dnd;
                self.apply(&Action::Dnd(on));
            }
            Action::VolumeUp => {
                let mut state = self.lock();
                state.volume = (state.volume + 1).min(15);
            }
            Action::VolumeDown => {
                let mut state = self.lock();
                state.volume = state.volume.saturating_sub(1);
            }
            Action::Mute => {
                if matches!(call_state, CallState::Talking | CallState::Held) {
                    let muted = {
                        let mut state = self.lock();
                        state.muted = !state.muted;
                        state.muted
                    };
                    self.fire(if muted { "mute" } else { "unmute" });
                }
            }
            Action::Key(key) => self.lock().keys.push(key.clone()),
            Action::Message(text) => self.lock().last_message = Some(text.clone()),
            Action::Reboot => {
                let phone = self.clone();
                tokio::spawn(async move {
                    // Answer the request first, then go down and come back like a real phone.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    {
                        let mut state = phone.lock();
                        state.registered = false;
                        state.confirmed = false;
                    }
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    phone.boot().await;
                });
            }
            Action::Reprovision => {
                let phone = self.clone();
                tokio::spawn(async move {
                    phone.fetch_provisioning().await;
                    phone.fire("provisioned");
                });
            }
            Action::Status => {}
        }
    }

    /// Handles one Action URI request: access, parse, act, reply.
    pub(super) fn handle(&self, request: Request, peer: SocketAddr) -> Reply {
        let personality = self.inner.options.personality;
        let line = format!("{} {}", request.method, request.target);
        info!(mac = %self.mac(), request = %line, "Simulated phone received a request.");
        let scheme = request
            .authorization
            .as_deref()
            .and_then(|value| value.split_whitespace().next())
            .unwrap_or("none")
            .to_string();
        {
            let mut state = self.lock();
            state.requests.push(line);
            state.authorizations.push(scheme);
        }
        let access = {
            let state = self.lock();
            (personality.check_access)(&AccessCtx {
                request: &request,
                peer,
                username: &self.inner.options.username,
                password: &self.inner.options.password,
                provisioned: &state.provisioned,
                confirmed: state.confirmed,
                digest: self.inner.options.digest,
            })
        };
        if let Err(reply) = access {
            if reply.status == 403 && reply.body.contains("prompt") {
                self.lock().prompt_pending = true;
            }
            return reply;
        }
        let actions = match (personality.parse_request)(&request) {
            Ok(actions) => actions,
            Err(reply) => return reply,
        };
        for action in &actions {
            self.apply(action);
        }
        let snapshot = self.snapshot();
        (personality.reply)(&request, &actions, &snapshot)
    }
}
