//! Command payloads (`cmd/<name>` on MQTT or the websocket): `command::parse` never panics, and
//! what it accepts every vendor that has the command can turn into a request, and read any reply
//! to it without panicking.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use phone2mqtt::model::CommandKind;
use phone2mqtt::phone_vendors::{PhoneReply, Target, VENDORS};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// A command of the table by index, or the raw name.
    name: Result<u8, &'a str>,
    payload: &'a [u8],
    reply_status: u16,
    reply: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let kinds: Vec<CommandKind> = CommandKind::phone_commands().collect();
    let name = match input.name {
        Ok(index) => kinds[index as usize % kinds.len()].name(),
        Err(raw) => raw,
    };
    let (_, parsed) = phone2mqtt::command::parse(name, input.payload);
    let Ok(command) = parsed else {
        return;
    };
    let target = Target::default();
    let reply = PhoneReply {
        status: input.reply_status,
        body: input.reply.to_string(),
    };
    for spec in VENDORS.iter().filter(|spec| spec.supports(command.kind)) {
        if (spec.build)(&command, &target).is_ok() {
            let _ = (spec.read_reply)(&command, &reply);
        }
    }
    let _ = phone2mqtt::phone_vendors::yealink::parse_status(input.reply);
});
