//! The Manager's logo upload (`POST /api/phones/<id>/logo`, admins only) when the data directory
//! refuses the converted logo: a server error that says what failed, without the directory's path,
//! and an upload that works again once the directory does.

mod common;

use std::io::Cursor;

use common::*;
use reqwest::StatusCode;

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";

fn png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([(x * 4) as u8, 80, 160]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logo_the_data_directory_refuses_is_a_server_error_without_the_path() {
    let gw = start_gateway(test_config()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let _phone = unconfigured_phone(&gw, "yealink", MAC, &power).await;
    let admin = bearer_client(&gw.admin_token);
    let url = format!("{}/api/phones/{ID}/logo", gw.http());

    // A file where the logos directory goes: the converted logo cannot be written.
    let logos = gw.data_dir.0.join("logos");
    std::fs::write(&logos, "not a directory").unwrap();
    let refused = admin.post(&url).body(png()).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = refused.text().await.unwrap();
    assert!(body.contains("could not be kept"), "{body}");
    let data_dir = gw.data_dir.0.display().to_string();
    assert!(
        !body.contains(&data_dir),
        "the answer names the data directory: {body}"
    );

    // The directory fixed, the same upload is hosted.
    std::fs::remove_file(&logos).unwrap();
    let hosted = admin.post(&url).body(png()).send().await.unwrap();
    assert_eq!(hosted.status(), StatusCode::OK);
    let hosted: serde_json::Value = hosted.json().await.unwrap();
    assert!(
        hosted["url"].as_str().unwrap().contains("/logos/"),
        "{hosted}"
    );

    power.cancel();
    gw.stop().await;
}
