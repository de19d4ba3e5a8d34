//! The Manager page in a real headless Chromium, driven through chromedriver: it loads, the
//! simulated phones appear, a call shows as ringing, a DND click reaches the phone, and a bulk
//! command reaches several phones. The browser logs in as a person would: with the one-time link
//! `serve` prints, or with a name and password on the login page. scripts/test installs
//! Debian's chromium and chromium-driver.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use phone2mqtt::sim::SimPhone;

const MACS: [&str; 3] = [
    "00:15:65:00:00:21",
    "00:15:65:00:00:22",
    "00:15:65:00:00:23",
];
const IDS: [&str; 3] = ["001565000021", "001565000022", "001565000023"];

struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempdir::TempDir,
}

fn tool(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
        let path = format!("{dir}/{name}");
        if std::path::Path::new(&path).exists() {
            return path;
        }
    }
    panic!(
        "`{name}` is not installed: run scripts/test, which installs chromium and chromium-driver"
    );
}

async fn browser() -> Browser {
    phone2mqtt::mqtt::install_crypto_provider();
    let port = free_port().port();
    let driver = tokio::process::Command::new(tool("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let profile = tempdir::TempDir::new();
    let capabilities = serde_json::json!({
        // The HTTPS test's self-signed certificate, as a user who accepted it.
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": tool("chromium"),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1500,1100", format!("--user-data-dir={}", profile.0.display()),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let client = loop {
        match ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(err) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "chromedriver did not answer: {err}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

/// Runs `script` in the page until it returns `true`.
async fn until(client: &Client, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let value = client.execute(script, vec![]).await.unwrap_or_default();
        if value == serde_json::Value::Bool(true) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = std::fs::write(
                "target/manager-failure.png",
                client.screenshot().await.unwrap_or_default(),
            );
            panic!("the page never showed: {what} (screenshot in target/manager-failure.png)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(TIMEOUT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no `{css}` on the page: {err}"))
        .click()
        .await
        .unwrap_or_else(|err| panic!("`{css}` cannot be clicked: {err}"));
}

/// Logs in on the login page, as a person types it.
async fn log_in(page: &Client, gw: &TestGateway, name: &str, password: &str) {
    page.goto(&format!("{}/login", gw.http())).await.unwrap();
    for (field, value) in [("name", name), ("password", password)] {
        page.find(Locator::Css(&format!("input[name={field}]")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    click(page, "form#login button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_shows_the_fleet_live_and_its_buttons_work() {
    let addrs: Vec<_> = MACS.iter().map(|_| free_port()).collect();
    let mut config = test_config();
    for (index, (mac, addr)) in MACS.iter().zip(&addrs).enumerate() {
        let mut entry = phone_entry(
            "yealink",
            mac,
            *addr,
            ["Reception", "Sales", "Support"][index],
        );
        entry.groups = vec!["office".into()];
        config.phones.push(entry);
    }
    let gw = start_gateway(config).await;
    let mut phones = Vec::new();
    for (mac, addr) in MACS.iter().zip(&addrs) {
        phones.push(start_phone(&gw, "yealink", mac, *addr).await);
    }
    let browser = browser().await;
    let page = &browser.client;
    // Not logged in: the login page.
    page.goto(&gw.http()).await.unwrap();
    until(
        page,
        "the login page",
        "return location.pathname === '/login' && !!document.querySelector('form#login')",
    )
    .await;
    // The one-time link: logged in as an admin, and the secret leaves the address bar.
    page.goto(&gw.gateway.login_link().unwrap()).await.unwrap();
    until(
        page,
        "the Manager without the secret in its address",
        "return location.pathname === '/' && location.search === '' && !!document.querySelector('#conn')",
    )
    .await;
    until(
        page,
        "the name and the first-admin form",
        "return document.querySelector('#me-name').textContent === 'login link' && !document.querySelector('#me').hidden && !document.querySelector('#first-user').hidden",
    )
    .await;

    until(
        page,
        "connected",
        "return document.querySelector('#conn').dataset.state === 'connected'",
    )
    .await;
    until(
        page,
        "three phones",
        "return document.querySelectorAll('#phones tr[data-phone]').length === 3",
    )
    .await;
    // The gateway's figures from `/metrics`, in the top bar.
    until(
        page,
        "the gateway's figures",
        "const h = document.querySelector('#health'); return !h.hidden && h.querySelectorAll('.figure').length === 7 && h.textContent.includes('Refused 0') && h.textContent.includes('Outbox 0') && h.textContent.includes('Callbacks')",
    )
    .await;

    // A call comes in: the row says ringing.
    phones[0].ring("+4930123456", Some("Anna Schmidt")).unwrap();
    until(
        page,
        "the first phone ringing",
        &format!("const r = document.querySelector('#phones tr[data-phone=\"{}\"]'); return r.querySelector('.call-state').textContent.trim() === 'ringing' && r.textContent.includes('+4930123456')", IDS[0]),
    )
    .await;
    until(page, "the call in the log", "return [...document.querySelectorAll('#log .log-entry')].some(e => e.dataset.event === 'incoming_call')").await;

    // DND from the phone's detail panel reaches the phone, and the table shows it.
    click(
        page,
        &format!("#phones tr[data-phone=\"{}\"] td.name", IDS[1]),
    )
    .await;
    click(
        page,
        "#detail-commands button[data-cmd=\"dnd\"][data-value=\"on\"]",
    )
    .await;
    phone_becomes(&phones[1], "DND on", |s| s.dnd).await;
    until(
        page,
        "DND on in the table",
        &format!("return document.querySelector('#phones tr[data-phone=\"{}\"] .dnd').textContent.trim() === 'on'", IDS[1]),
    )
    .await;
    until(page, "an ok result", "return [...document.querySelectorAll('#detail-results li.result')].some(l => l.dataset.command === 'dnd' && l.dataset.status === 'ok')").await;

    // A bulk command reaches every selected phone, with a result per phone.
    click(page, "#select-all").await;
    until(
        page,
        "three selected",
        "return document.querySelectorAll('input.select-phone:checked').length === 3",
    )
    .await;
    click(page, "button[data-bulk=\"dnd\"][data-value=\"on\"]").await;
    for phone in &phones {
        phone_becomes(phone, "bulk DND on", |s| s.dnd).await;
    }
    until(
        page,
        "three ok bulk results",
        "return document.querySelectorAll('#bulk-results li[data-status=\"ok\"]').length === 3",
    )
    .await;

    let png = page.screenshot().await.unwrap();
    std::fs::create_dir_all("target").unwrap();
    std::fs::write("target/manager.png", png).unwrap();

    // A viewer sees the fleet but is offered no command.
    phone2mqtt::auth::store::Store::new(&gw.data_dir.0)
        .add_user("vera", phone2mqtt::auth::Role::Viewer, "viewer password")
        .unwrap();
    page.delete_all_cookies().await.unwrap();
    log_in(page, &gw, "vera", "viewer password").await;
    until(
        page,
        "the viewer's fleet",
        "return document.body.dataset.role === 'viewer' && document.querySelectorAll('#phones tr[data-phone]').length === 3",
    )
    .await;
    click(
        page,
        &format!("#phones tr[data-phone=\"{}\"] td.name", IDS[0]),
    )
    .await;
    until(
        page,
        "no commands for a viewer",
        "const hidden = s => !document.querySelector(s) || getComputedStyle(document.querySelector(s)).display === 'none'; return !document.querySelector('#detail').hidden && hidden('#detail-commands') && hidden('#bulk .bulk-actions') && hidden('#first-user')",
    )
    .await;
    browser.client.close().await.unwrap();
    gw.stop().await;
}

/// A phone given only the agent's address is discovered, adopted from the Manager, gets a
/// programmable key and an uploaded logo from it, and its key press shows in the live log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_phone_is_adopted_and_programmed_from_the_manager() {
    use phone2mqtt::model::PhoneId;
    use phone2mqtt::sim::{personality, SimOptions};
    const ID: &str = "000413de0777";
    let gw = start_gateway(test_config()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let mut options = SimOptions::new(
        personality("snom").unwrap(),
        PhoneId::parse(ID).unwrap(),
        &gw.gateway.public_url,
    );
    options.password = PASSWORD.into();
    let phone = SimPhone::spawn(options, power.clone()).await.unwrap();
    assert!(phone.wait_booted(TIMEOUT).await);
    phone2mqtt::auth::store::Store::new(&gw.data_dir.0)
        .add_user(
            "anna",
            phone2mqtt::auth::Role::Admin,
            "correct horse battery",
        )
        .unwrap();
    let browser = browser().await;
    let page = &browser.client;
    log_in(page, &gw, "anna", "correct horse battery").await;
    until(
        page,
        "logged in as anna",
        "return location.pathname === '/' && document.querySelector('#me-name')?.textContent === 'anna' && document.querySelector('#me-role').textContent === 'admin'",
    )
    .await;
    let row = format!("#phones tr[data-phone=\"{ID}\"]");
    until(
        page,
        "the discovered phone",
        &format!("return !!document.querySelector('{row}')"),
    )
    .await;
    click(page, &format!("{row} td.name")).await;
    until(
        page,
        "the adoption form",
        "return !!document.querySelector('#detail-adopt [data-form=adopt]')",
    )
    .await;

    // Adopt: the address the phone is at and its password, typed as a person would.
    let address = page
        .find(Locator::Css("#detail-adopt input[name=address]"))
        .await
        .unwrap();
    address.clear().await.unwrap();
    address.send_keys(&phone.addr().to_string()).await.unwrap();
    page.find(Locator::Css("#detail-adopt input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    page.find(Locator::Css("#detail-adopt input[name=name]"))
        .await
        .unwrap()
        .send_keys("Lobby")
        .await
        .unwrap();
    click(page, "#detail-adopt button[data-cmd=adopt]").await;
    until(page, "adopted", "return [...document.querySelectorAll('#detail-results li.result')].some(l => l.dataset.command === 'adopt' && l.dataset.status === 'ok')").await;
    until(page, "the form gone once configured", "return !document.querySelector('#detail-adopt [data-form=adopt]') && document.querySelector('#detail-title').textContent.includes('Lobby')").await;

    // A programmable key from the Manager reaches the phone through re-provisioning.
    page.find(Locator::Css(
        "[data-command=configure-key] input[type=number]",
    ))
    .await
    .unwrap()
    .send_keys("2")
    .await
    .unwrap();
    page.find(Locator::Css(
        "[data-command=configure-key] input[aria-label='Key label']",
    ))
    .await
    .unwrap()
    .send_keys("Garage door")
    .await
    .unwrap();
    click(page, "button[data-cmd=configure-key]").await;
    phone_becomes(&phone, "key 2 programmed", |s| {
        s.settings
            .get("fkey1")
            .is_some_and(|v| v.starts_with("url "))
    })
    .await;
    until(page, "in sync", "return document.querySelector('#detail-prov dd[data-field=in_sync]')?.dataset.value === 'in sync'").await;

    // A setting kept without re-provisioning: the row says the phone drifted, and the search
    // finds it by that word.
    let stored = gw
        .api()
        .post(format!("{}/api/phones/{ID}/cmd/configure", gw.http()))
        .body(r#"{"settings": {"language": "Deutsch"}, "apply": false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    until(
        page,
        "the drift badge",
        &format!("return !document.querySelector('{row} .drift-badge').hidden"),
    )
    .await;
    until(page, "the drift in the panel", "return document.querySelector('#detail-prov dd[data-field=in_sync]')?.dataset.value === 'drift'").await;

    // Pressed on the phone: the key event with its label in the live log.
    reqwest::Client::new()
        .post(format!("http://{}/sim/key/2", phone.addr()))
        .send()
        .await
        .unwrap();
    until(page, "the key press in the log", "return [...document.querySelectorAll('#log .log-entry')].some(e => e.dataset.event === 'key' && e.textContent.includes('Garage door'))").await;

    // A logo uploaded in the Manager is converted, hosted and downloaded by the phone.
    let image = {
        let image = image::RgbImage::from_pixel(800, 600, image::Rgb([10, 120, 200]));
        let path = gw.data_dir.0.join("upload.png");
        image.save(&path).unwrap();
        path
    };
    page.find(Locator::Css("input[data-upload-for=logo]"))
        .await
        .unwrap()
        .send_keys(&image.display().to_string())
        .await
        .unwrap();
    click(page, "[data-command=logo-upload] button").await;
    phone_becomes(&phone, "the logo", |s| s.logo.is_some()).await;
    let logo = phone.snapshot().logo.unwrap();
    // The Snom D785's screen: 480×272; 800×600 scaled to fit keeps its aspect.
    assert_eq!((logo.width, logo.height), (363, 272));
    until(page, "an ok logo result", "return [...document.querySelectorAll('#detail-results li.result')].some(l => l.dataset.command === 'logo' && l.dataset.status === 'ok')").await;

    let png = page.screenshot().await.unwrap();
    std::fs::write("target/manager-adopt.png", png).unwrap();

    // Logging out ends the session: the page is the login form again.
    click(page, "#logout").await;
    until(
        page,
        "the login page after logout",
        "return location.pathname === '/login' && document.querySelector('#message').textContent.includes('Logged out')",
    )
    .await;
    page.goto(&gw.http()).await.unwrap();
    until(
        page,
        "still logged out",
        "return location.pathname === '/login'",
    )
    .await;
    browser.client.close().await.unwrap();
    power.cancel();
    gw.stop().await;
}

/// With HTTPS on, a browser given the plain address lands on the HTTPS Manager, whose
/// websocket (wss) shows the phone and carries its commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_works_over_https() {
    let addr = free_port();
    let mut config = test_config();
    config.http.tls_self_signed = true;
    config.http.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    config
        .phones
        .push(phone_entry("yealink", MACS[0], addr, "Reception"));
    let gw = start_gateway(config).await;
    let phone = start_phone(&gw, "yealink", MACS[0], addr).await;
    let browser = browser().await;
    let page = &browser.client;
    // The plain port sends people to HTTPS, where the Manager wants a login first.
    page.goto(&format!("{}/", gw.http())).await.unwrap();
    until(
        page,
        "the HTTPS login page",
        &format!(
            "return location.href.startsWith('{}/login')",
            gw.gateway.manager_url
        ),
    )
    .await;
    // The one-time link goes to the HTTPS address (never the plain port) and logs in there.
    let link = gw.gateway.login_link().unwrap();
    assert!(
        link.starts_with(&format!("{}/?token=", gw.gateway.manager_url)),
        "{link}"
    );
    page.goto(&link).await.unwrap();
    until(
        page,
        "the HTTPS Manager",
        &format!("return location.href === '{}/'", gw.gateway.manager_url),
    )
    .await;
    // The plain port's redirect now lands on the Manager, logged in.
    page.goto(&format!("{}/", gw.http())).await.unwrap();
    until(
        page,
        "the HTTPS Manager again, logged in",
        &format!(
            "return location.href === '{}/' && !!document.querySelector('#conn')",
            gw.gateway.manager_url
        ),
    )
    .await;
    until(
        page,
        "connected over wss",
        "return document.querySelector('#conn').dataset.state === 'connected'",
    )
    .await;
    until(
        page,
        "the phone",
        "return document.querySelectorAll('#phones tr[data-phone]').length === 1",
    )
    .await;
    click(
        page,
        &format!("#phones tr[data-phone=\"{}\"] td.name", IDS[0]),
    )
    .await;
    click(
        page,
        "#detail-commands button[data-cmd=\"dnd\"][data-value=\"on\"]",
    )
    .await;
    phone_becomes(&phone, "DND on", |s| s.dnd).await;
    browser.client.close().await.unwrap();
    gw.stop().await;
}
