//! Images and downloads within `[limits]`: an upload over `image_bytes` is a 413, one wider or
//! taller than `image_pixels` a 422 (read from its header, before decoding); a `cmd/logo` URL
//! that sends without end, announces too much or trickles is an error result at
//! `download_bytes` or `download_secs`; the site's upstream provisioning server likewise. Each
//! refusal is counted on `/metrics`, and the gateway goes on serving.

mod common;

use std::io::Cursor;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MAC: &str = "00:15:65:4a:a9:51";
const ID: &str = "0015654aa951";

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 13) as u8, (x ^ y) as u8])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

/// A PNG of a few hundred bytes whose header says 12,500 x 12,500 (the 2 GB upload):
/// an IHDR, an IDAT of a few zero rows, an IEND.
fn png_bomb() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&12_500u32.to_be_bytes());
    header.extend_from_slice(&12_500u32.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey
    chunk(&mut png, b"IHDR", &header);
    // A zlib stream (stored block) of zeros: enough for the decoder to start.
    let zeros = [0u8; 64];
    let mut idat = vec![0x78, 0x01, 0x01];
    idat.extend_from_slice(&(zeros.len() as u16).to_le_bytes());
    idat.extend_from_slice(&(!(zeros.len() as u16)).to_le_bytes());
    idat.extend_from_slice(&zeros);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn limited_config() -> phone2mqtt::config::Config {
    let mut config = test_config();
    config.limits.image_bytes = 64 * 1024;
    config.limits.image_pixels = 256;
    config.limits.download_bytes = 64 * 1024;
    config.limits.download_secs = 2;
    config
}

/// What a test server sends after reading a request head.
#[derive(Clone, Copy)]
enum Serve {
    /// Chunked bytes without end.
    Endless,
    /// A Content-Length over the cap, then nothing.
    Announced,
    /// A byte now and then, without end.
    Trickle,
    /// This PNG, whole.
    Image(&'static [u8]),
}

/// A loopback HTTP server that answers every request as `serve` says.
async fn server(serve: Serve) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = answer(&mut socket, serve).await;
            });
        }
    });
    addr
}

async fn answer(socket: &mut tokio::net::TcpStream, serve: Serve) -> std::io::Result<()> {
    match serve {
        Serve::Endless => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = vec![b'x'; 16 * 1024];
            loop {
                socket.write_all(b"4000\r\n").await?;
                socket.write_all(&chunk).await?;
                socket.write_all(b"\r\n").await?;
            }
        }
        Serve::Announced => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000000000\r\n\r\n")
                .await?;
            std::future::pending::<()>().await;
            Ok(())
        }
        Serve::Trickle => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            loop {
                socket.write_all(b"1\r\nx\r\n").await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Serve::Image(bytes) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(bytes).await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_image_limits_are_refused_and_counted() {
    let gw = start_gateway(limited_config()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let _phone = unconfigured_phone(&gw, "yealink", MAC, &power).await;
    let admin = gw.api();
    let url = format!("{}/api/phones/{ID}/logo", gw.http());

    // Over image_bytes: 413, before anything is decoded.
    let big = admin
        .post(&url)
        .body(vec![0u8; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = big.text().await.unwrap();
    assert!(text.contains("image_bytes"), "{text}");

    // Small on disk, wider than image_pixels: 422.
    let wide = png(300, 8);
    assert!(wide.len() < 64 * 1024);
    let refused = admin.post(&url).body(wide).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("300 x 8") && text.contains("image_pixels"),
        "{text}"
    );

    // The attack: four parallel uploads of a small file that decodes to 12,500 x 12,500
    // pixels. Each is refused from its header.
    let bomb = png_bomb();
    let uploads = (0..4).map(|_| admin.post(&url).body(bomb.clone()).send());
    for answer in futures_util::future::join_all(uploads).await {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = answer.text().await.unwrap();
        assert!(text.contains("12500 x 12500"), "{text}");
    }

    // Within both: hosted.
    let hosted = admin.post(&url).body(png(200, 100)).send().await.unwrap();
    assert_eq!(hosted.status(), StatusCode::OK);

    let text = gw.metrics().await;
    assert_eq!(refusals_in(&text, "image_bytes"), 1, "{text}");
    assert_eq!(refusals_in(&text, "image_dimensions"), 5, "{text}");
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logo_downloads_are_capped_in_bytes_and_time_and_counted() {
    let (gw, _phone) = gateway_with_phone_in(limited_config(), "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let wide: &'static [u8] = Box::leak(png(300, 8).into_boxed_slice());
    let cases = [
        ("t-endless", Serve::Endless, "download_bytes"),
        ("t-announced", Serve::Announced, "download_bytes"),
        ("t-trickle", Serve::Trickle, "download_secs"),
        ("t-wide", Serve::Image(wide), "image_pixels"),
    ];
    for (transaction, serve, limit) in cases {
        let addr = server(serve).await;
        let result = command(
            &mut probe,
            ID,
            "logo",
            json!({"url": format!("http://{addr}/logo.png"), "transaction": transaction}),
        )
        .await;
        assert_eq!(result["status"], "error", "{result}");
        assert!(
            result["error"].as_str().unwrap().contains(limit),
            "{transaction}: {result}"
        );
    }

    // The phone's queue goes on: a logo within the limits is set.
    let fine: &'static [u8] = Box::leak(png(200, 100).into_boxed_slice());
    let addr = server(Serve::Image(fine)).await;
    let result = command(
        &mut probe,
        ID,
        "logo",
        json!({"url": format!("http://{addr}/logo.png"), "transaction": "t-fine"}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");

    let text = gw.metrics().await;
    assert_eq!(refusals_in(&text, "download_bytes"), 2, "{text}");
    assert_eq!(refusals_in(&text, "download_time"), 1, "{text}");
    assert_eq!(refusals_in(&text, "image_dimensions"), 1, "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_upstream_provisioning_file_is_refused_and_counted() {
    let site = server(Serve::Endless).await;
    let mut config = limited_config();
    config.provisioning.upstream = Some(format!("http://{site}/prov/"));
    let gw = start_gateway(config).await;
    let answer = reqwest::get(format!("{}/001565aa0052.cfg", gw.http()))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let text = answer.text().await.unwrap();
    assert!(text.contains("download_bytes"), "{text}");
    let text = gw.metrics().await;
    assert_eq!(refusals_in(&text, "download_bytes"), 1, "{text}");
    gw.stop().await;
}
