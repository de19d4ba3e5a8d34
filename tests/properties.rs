//! Properties of the parsers that meet hostile input, checked on generated inputs (proptest):
//! the HTTP head repair, the Action URL variables and every vendor's callback parser, command
//! payloads, the directory CSV, the provisioning merges and the simulators' readers. The
//! cargo-fuzz targets in fuzz/ check the same things for longer (`scripts/fuzz`); the crashes they
//! found are the regression tests at the end.

use phone2mqtt::agent::directory;
use phone2mqtt::agent::receiver::parse_vars;
use phone2mqtt::command;
use phone2mqtt::http_front::repair_head;
use phone2mqtt::model::{CommandKind, Subscriber};
use phone2mqtt::phone_vendors::merge::{merge_text, merge_xml};
use phone2mqtt::phone_vendors::{
    encode_query_value, parse_plain_user_agent, Callback, Carries, VENDORS,
};
use phone2mqtt::sim;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

/// Parses a repaired head as hyper does; the parsed path.
fn httparse_path(head: &[u8]) -> String {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => request.path.unwrap().to_string(),
        other => panic!(
            "httparse refuses {:?}: {other:?}",
            String::from_utf8_lossy(head)
        ),
    }
}

/// A request target as phones send it: spaces, `#`, quotes, stray `%`, non-ASCII.
fn raw_target() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"abcXYZ019/?=&+-_.~%#\" <>{}|\\^`[]".to_vec()),
            1 => any::<u8>().prop_filter("not a line end", |b| *b != b'\n' && *b != b'\r'),
        ],
        0..40,
    )
    .prop_map(|rest| [b"/".to_vec(), rest].concat())
}

/// Headers httparse accepts.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,12}", "[ -~]{0,30}"), 0..5)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn repaired_heads_parse(
        method in prop::sample::select(vec!["GET", "POST", "PUT"]),
        target in raw_target(),
        absolute in any::<bool>(),
        headers in headers(),
        body in "[ -~]{0,20}",
        lf_only in any::<bool>(),
    ) {
        let eol: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
        let mut head = format!("{method} ").into_bytes();
        if absolute {
            head.extend_from_slice(b"http://10.0.0.1:8080");
        }
        head.extend_from_slice(&target);
        head.extend_from_slice(b" HTTP/1.1");
        head.extend_from_slice(eol);
        for (name, value) in &headers {
            head.extend_from_slice(format!("{name}: {}", value.trim()).as_bytes());
            head.extend_from_slice(eol);
        }
        head.extend_from_slice(eol);
        head.extend_from_slice(body.as_bytes());
        let Ok(repaired) = repair_head(&head) else {
            // Only a target with its own line break or `\n\n` is refused.
            prop_assert!(target.windows(2).any(|w| w == b"\n\n") || target.contains(&b'\n'));
            return Ok(());
        };
        let path = httparse_path(&repaired);
        prop_assert!(path.starts_with('/'));
        prop_assert!(repaired.ends_with(body.as_bytes()));
    }

    #[test]
    fn valid_targets_are_left_alone(
        target in "/[A-Za-z0-9._~!$&'()*+,;=:@/?-]{0,40}",
        escapes in prop::collection::vec("%[0-9A-Fa-f]{2}", 0..3),
        headers in headers(),
    ) {
        let target = format!("{target}{}", escapes.concat());
        let mut head = format!("GET {target} HTTP/1.1\r\n");
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {}\r\n", value.trim()));
        }
        head.push_str("\r\n");
        let repaired = repair_head(head.as_bytes()).unwrap();
        prop_assert_eq!(httparse_path(&repaired), target.clone());
        if !target.starts_with("/action/") {
            prop_assert_eq!(&repaired[..], head.as_bytes());
        }
    }

    #[test]
    fn repair_never_panics(input in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(repaired) = repair_head(&input) {
            let line_end = repaired.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = [&repaired[..line_end + 2], b"\r\n"].concat();
            httparse_path(&line);
        }
    }

    #[test]
    fn query_variables_survive_encoding(query in "[a-z0-9$%+&=?. \\-_]{0,60}|\\PC{0,40}") {
        let vars = parse_vars(&query);
        for (name, value) in &vars {
            prop_assert!(!name.is_empty());
            prop_assert!(!value.is_empty() && value.trim() == value);
        }
        let encoded: Vec<String> = vars
            .iter()
            .map(|(n, v)| format!("{}={}", encode_query_value(n), encode_query_value(v)))
            .collect();
        prop_assert_eq!(parse_vars(&encoded.join("&")), vars);
    }

    #[test]
    fn callback_parsers_never_panic(
        vendor in 0..VENDORS.len(),
        event in prop_oneof![any::<prop::sample::Index>().prop_map(Ok), "\\PC{0,12}".prop_map(Err)],
        query in "\\PC{0,80}",
        user_agent in prop::option::of("\\PC{0,40}"),
    ) {
        let spec = VENDORS[vendor];
        let event = match event {
            Ok(index) => index.get(spec.events).wire.to_string(),
            Err(raw) => raw,
        };
        let callback = Callback { event, vars: parse_vars(&query), user_agent };
        let _ = spec.parse(&callback);
        if let Some(ua) = &callback.user_agent {
            for spec in VENDORS {
                let _ = (spec.recognise)(ua);
                let _ = parse_plain_user_agent(ua, spec.name);
            }
        }
    }

    /// What a phone fills into its Action URL comes out of every vendor's parser as it went in.
    #[test]
    fn callback_fields_round_trip(
        vendor in 0..VENDORS.len(),
        mac in "[0-9a-f]{12}",
        ip in "10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        remote in "\\+?[0-9]{2,12}",
        local in "[0-9]{2,6}",
        name in "[A-Za-z][A-Za-z0-9 .,'&+#@-]{0,20}[A-Za-z0-9]",
        call_id in "[A-Za-z0-9@.-]{1,24}",
    ) {
        let spec = VENDORS[vendor];
        let event = spec
            .events
            .iter()
            .find(|e| e.carries == Carries::Call)
            .unwrap_or(&spec.events[0]);
        let v = &spec.vars;
        let mut sent: Vec<(&str, &str)> = vec![(v.mac, &mac)];
        for (var, value) in [
            (v.ip, &ip),
            (v.remote, &remote),
            (v.local, &local),
            (v.display_remote, &name),
            (v.call_id, &call_id),
        ] {
            if let Some(var) = var {
                sent.push((var, value));
            }
        }
        let query: Vec<String> = sent
            .iter()
            .map(|(n, value)| format!("{n}={}", encode_query_value(value)))
            .collect();
        let callback = Callback {
            event: event.wire.to_string(),
            vars: parse_vars(&query.join("&")),
            user_agent: None,
        };
        let parsed = spec.parse(&callback).unwrap();
        prop_assert_eq!(parsed.event, event.event);
        prop_assert_eq!(parsed.mac.map(|m| m.as_str().to_string()), Some(mac.clone()));
        let expect = |var: Option<&str>, value: &str| var.map(|_| value.to_string());
        prop_assert_eq!(parsed.ip, expect(v.ip, &ip));
        if event.carries == Carries::Call {
            prop_assert_eq!(parsed.remote, expect(v.remote, &remote));
            prop_assert_eq!(parsed.local, expect(v.local, &local));
            prop_assert_eq!(parsed.remote_name, expect(v.display_remote, &name));
            prop_assert_eq!(parsed.call_id, expect(v.call_id, &call_id));
        }
    }

    #[test]
    fn command_parse_never_panics(
        name in prop_oneof![
            any::<prop::sample::Index>().prop_map(|i| {
                let kinds: Vec<CommandKind> = CommandKind::phone_commands().collect();
                i.get(&kinds).name().to_string()
            }),
            "\\PC{0,10}",
        ],
        payload in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..60),
            "\\PC{0,60}".prop_map(String::into_bytes),
            json_payload().prop_map(String::into_bytes),
        ],
    ) {
        let _ = command::parse(&name, &payload);
    }

    /// `in` is as long as it says, or refused: never a panic, never another time, never more
    /// than a year.
    #[test]
    fn message_delays_are_what_was_asked(
        amount in prop_oneof![0u64..1000, any::<u64>()],
        unit in prop::sample::select(vec!["s", "m", "h", "d", "w", "M", "y"]),
    ) {
        let before = time::OffsetDateTime::now_utc();
        let payload = format!(r#"{{"text":"x","in":"{amount}{unit}"}}"#);
        let (_, parsed) = command::parse("message", payload.as_bytes());
        if let Ok(command) = parsed {
            let asked = humantime::parse_duration(&format!("{amount}{unit}")).unwrap();
            let at = command.at.expect("a delayed message has its time");
            let delay = at - before;
            prop_assert!(delay >= asked && delay - asked < time::Duration::minutes(1));
            // At most a year ahead (366 days): a reminder past that is refused.
            prop_assert!(asked <= std::time::Duration::from_secs(366 * 86_400));
        } else if amount < 1000 && ["s", "m", "h"].contains(&unit) {
            prop_assert!(false, "`in` {amount}{unit} refused: {parsed:?}");
        }
    }

    #[test]
    fn directory_parse_never_panics(text in "\\PC{0,200}|[0-9a-z,;\"\n \\[\\]{}:]{0,200}") {
        let _ = directory::parse(&text);
    }

    /// What `to_csv` writes, `parse` reads back as the same list.
    #[test]
    fn directory_round_trips(list in subscribers()) {
        let written = directory::to_csv(&list);
        prop_assert_eq!(directory::parse(&written), Ok(list));
    }

    /// Merging phone2mqtt's settings into a file that already has them changes nothing.
    #[test]
    fn text_merge_is_idempotent(site in key_value_file(), ours in key_value_file()) {
        let header = "#!version:1.0.0.1";
        let ours: Vec<&str> = ours.lines().collect();
        let mut seen = std::collections::HashSet::new();
        // One line per key, as phone2mqtt writes its files.
        let ours: String = ours
            .into_iter()
            .filter(|l| l.split_once('=').is_none_or(|(k, _)| seen.insert(k.trim().to_string())))
            .map(|l| format!("{l}\n"))
            .collect();
        let once = merge_text(&site, &ours, header);
        prop_assert!(once.starts_with("#!version:1.0.0.1\n"));
        prop_assert_eq!(merge_text(&once, &ours, header), once);
    }

    #[test]
    fn xml_merge_is_idempotent(site in xml_file(), ours in xml_file()) {
        let once = merge_xml(&site, &ours).unwrap();
        prop_assert_eq!(merge_xml(&once, &ours).unwrap(), once);
    }

    #[test]
    fn xml_merge_never_panics(site in "\\PC{0,80}|[<>/a-z =\"!?-]{0,80}", ours in "[<>/a-z =\"]{0,60}") {
        if let Ok(merged) = merge_xml(&site, &ours) {
            prop_assert!(merge_xml(&merged, &ours).is_ok());
        }
    }

    /// The simulated phones read whatever they are sent without panicking.
    #[test]
    fn simulator_readers_never_panic(
        personality in 0..sim::PERSONALITIES.len(),
        file in "\\PC{0,120}|[<>/a-z0-9 =\".:#\n&;-]{0,120}",
        target in "/[ -~]{0,60}",
        body in "\\PC{0,40}",
    ) {
        let personality = sim::PERSONALITIES[personality];
        let mut provisioned = sim::Provisioned::default();
        (personality.read_provisioning)(&file, &mut provisioned);
        let mut settings = sim::settings::Settings::new();
        (personality.read_settings)(&file, &mut settings);
        let _ = (personality.key_url)(&settings, 1);
        let _ = (personality.logo_url)(&settings);
        let _ = sim::xml_leaves(&file);
        let _ = sim::settings::boot_includes(&file);
        let mut request = sim::Request::get(&target);
        request.body = body;
        let _ = (personality.parse_request)(&request);
    }
}

/// JSON objects with the fields commands read, in the types they take and the ones they do not.
fn json_payload() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "\\PC{0,12}".prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        prop::collection::vec("[a-z0-9]{0,4}", 0..3).prop_map(serde_json::Value::from),
        prop::collection::btree_map("[a-z0-9._]{1,8}", "[a-z0-9 ]{0,6}", 0..3)
            .prop_map(|m| serde_json::to_value(m).unwrap()),
    ];
    let field = prop::sample::select(vec![
        "number",
        "state",
        "text",
        "message",
        "key",
        "keys",
        "url",
        "line",
        "at",
        "in",
        "transaction",
        "value",
        "settings",
        "vendor",
        "apply",
    ]);
    prop::collection::btree_map(field, value, 0..4).prop_map(|m| serde_json::to_string(&m).unwrap())
}

fn subscribers() -> impl Strategy<Value = Vec<Subscriber>> {
    // Fields as `parse` gives them: trimmed; the extension unique and not empty.
    let field = "[A-Za-zäöüß0-9 ,;\"'.()/-]{0,16}".prop_map(|s| s.trim().to_string());
    prop::collection::btree_map("[0-9+*#]{1,8}", (field.clone(), field), 0..12).prop_map(|m| {
        m.into_iter()
            .map(|(extension, (name, department))| Subscriber {
                extension,
                name,
                department,
            })
            .collect()
    })
}

/// `key = value` lines, comments and blanks.
fn key_value_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        6 => ("[a-z]{1,3}(\\.[a-z0-9]{1,3}){0,2}", "[ -~]{0,12}")
            .prop_map(|(k, v)| format!("{k} = {v}")),
        1 => Just(String::new()),
        1 => Just("#!version:1.0.0.1".to_string()),
        1 => "# [ -~]{0,10}",
    ];
    prop::collection::vec(line, 0..10)
        .prop_map(|lines| lines.into_iter().map(|l| format!("{l}\n")).collect())
}

/// `<settings>` files with items by `name`, `idx`-keyed keys and nested sections.
fn xml_file() -> impl Strategy<Value = String> {
    let text = "[a-z0-9 &<>\"']{0,8}".prop_map(|t| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    });
    let leaf = prop_oneof![
        ("[a-c]{1,2}", text.clone()).prop_map(|(n, t)| format!(r#"<item name="{n}">{t}</item>"#)),
        ("[1-4]", text.clone()).prop_map(|(i, t)| format!(r#"<fkey idx="{i}">{t}</fkey>"#)),
        ("[p-r]", text).prop_map(|(n, t)| format!("<{n}>{t}</{n}>")),
        Just("<!-- note -->".to_string()),
    ];
    let section = ("[x-z]", prop::collection::vec(leaf.clone(), 0..4))
        .prop_map(|(n, items)| format!("<{n}>{}</{n}>", items.concat()));
    let child = prop_oneof![2 => leaf, 1 => section];
    prop::collection::vec(child, 0..6).prop_map(|children| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<settings>\n{}\n</settings>\n",
            children.join("\n")
        )
    })
}

/// Input every phone's User-Agent is matched against, cut inside a character by a fixed-width
/// prefix check.
#[test]
fn user_agent_with_a_wide_character_where_the_vendor_name_ends() {
    for spec in VENDORS {
        let cut = &spec.name[..spec.name.len() - 1];
        let _ = parse_plain_user_agent(&format!("{cut}é-x 1.2.3"), spec.name);
        let _ = (spec.recognise)(&format!("{cut}é-x 1.2.3"));
    }
}

/// A delay past the end of the calendar is refused, not a panic (`"10000y"` took the
/// dispatcher down).
#[test]
fn a_delay_past_the_calendar_is_refused() {
    let (_, parsed) = command::parse("message", br#"{"text":"x","in":"10000y"}"#);
    assert!(parsed.is_err(), "{parsed:?}");
}

/// Found by `fuzz/merge_text`: bare `\r`s at a line's end lost one on each merge.
#[test]
fn carriage_returns_merge_the_same_twice() {
    let header = "#!version:1.0.0.1";
    let (site, ours) = ("\r\r\r\r\r", "\r\r\r\r\r\ræ");
    let once = merge_text(site, ours, header);
    assert_eq!(merge_text(&once, ours, header), once);
}

/// Found by `fuzz/merge_text` (second run): our repeated lines (`= ` twice, key ``) were
/// matched by their text, so the one appended first on one merge came second on the next.
#[test]
fn repeated_lines_of_ours_merge_the_same_twice() {
    let header = "#!version:1.0.0.1";
    let site = "=$ =$ \n1=\x0f\x00\n\x00\x00\x00\x00\x00\x00\x00\x10\nXB\x0b\n=X\n\n\nXB";
    let ours = "\x0b\n=\\\n= \n== \n= ";
    let once = merge_text(site, ours, header);
    assert_eq!(merge_text(&once, ours, header), once);
    // The same with ordinary keys: two lines for one key, the site holding one of them.
    let (site, ours) = ("a = 1\nb = 2\n", "a = x\na = y\nb = z\na = x\n");
    let once = merge_text(site, ours, header);
    assert_eq!(merge_text(&once, ours, header), once);
}

/// Found by `fuzz/merge_xml`: broken XML the reader forgave was written back as a file that no
/// longer reads; the merge refuses it instead.
#[test]
fn a_merge_that_would_not_read_again_is_refused() {
    let site = "\u{12}\0\0\0\0\0\0\0<\n[2</\r\r;\r\r\r</settingses)tti\r$//>/7/>\0[";
    let ours = "[[[[[<\n/smtti\u{7}</settin><</\u{7}<\r$<</>\r\r$//>/</>\0\0\0stt/>mj";
    if let Ok(merged) = merge_xml(site, ours) {
        assert_eq!(merge_xml(&merged, ours).as_ref(), Ok(&merged));
    }
}
