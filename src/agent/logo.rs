//! Logos: an image (uploaded, or fetched from a URL) is converted to what the phone shows — a PNG
//! no larger than its screen — and kept in `<data_dir>/logos/`, from where the agent serves it
//! at `/logos/<file>` for the phone's provisioning to download.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, ImageReader};

/// The largest image accepted, before conversion.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// A converted logo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    /// The file name under `logos/`, named by its content so that a new image gets a new URL
    /// (phones cache by URL).
    pub file: String,
    pub width: u32,
    pub height: u32,
}

/// Why an image did not become a logo.
#[derive(Debug, thiserror::Error)]
pub enum LogoError {
    #[error("the image is {0} bytes; at most {MAX_IMAGE_BYTES} are accepted")]
    TooLarge(usize),
    #[error("cannot read the image: {0}")]
    Unreadable(std::io::Error),
    #[error("not an image phone2mqtt can read (PNG, JPEG, BMP or GIF)")]
    NotAnImage,
    #[error("cannot decode the image: {0}")]
    Undecodable(image::ImageError),
    #[error("cannot write the PNG: {0}")]
    Unencodable(image::ImageError),
    /// The converted logo could not be written to the logos directory.
    #[error(transparent)]
    Store(#[from] crate::datafile::Error),
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logos")
}

/// Decodes an image (PNG, JPEG, BMP or GIF), scales it down to fit `max` keeping its aspect,
/// and stores it as PNG.
pub fn convert_and_store(
    bytes: &[u8],
    max: (u32, u32),
    data_dir: &Path,
) -> Result<Logo, LogoError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(LogoError::TooLarge(bytes.len()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(LogoError::Unreadable)?;
    if reader.format().is_none() {
        return Err(LogoError::NotAnImage);
    }
    let image = reader.decode().map_err(LogoError::Undecodable)?;
    let (width, height) = (image.width(), image.height());
    let image = if width > max.0 || height > max.1 {
        image.resize(max.0, max.1, image::imageops::FilterType::Triangle)
    } else {
        image
    };
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(LogoError::Unencodable)?;
    let digest = crate::hash::md5_hex(&png);
    let file = format!(
        "logo-{}-{}x{}.png",
        &digest[..12],
        image.width(),
        image.height()
    );
    let path = dir(data_dir).join(&file);
    if !path.exists() {
        crate::datafile::write_bytes(&path, &png)?;
    }
    Ok(Logo {
        file,
        width: image.width(),
        height: image.height(),
    })
}

/// Whether a name is one `convert_and_store` could have made (nothing else is served).
pub fn is_logo_file(name: &str) -> bool {
    name.starts_with("logo-")
        && name.ends_with(".png")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]));
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        bytes
    }

    #[test]
    fn images_are_scaled_to_fit_and_stored_by_content() {
        let dir = std::env::temp_dir().join(format!("p2m-logo-{}", std::process::id()));
        let logo = convert_and_store(&png(960, 300), (480, 272), &dir).unwrap();
        assert_eq!((logo.width, logo.height), (480, 150));
        assert!(is_logo_file(&logo.file), "{}", logo.file);
        let stored = std::fs::read(dir.join("logos").join(&logo.file)).unwrap();
        assert!(stored.starts_with(b"\x89PNG"));
        let small = convert_and_store(&png(100, 50), (480, 272), &dir).unwrap();
        assert_eq!((small.width, small.height), (100, 50));
        let err = convert_and_store(b"<html>not found</html>", (480, 272), &dir).unwrap_err();
        assert!(matches!(err, LogoError::NotAnImage), "{err}");
        assert!(err.to_string().starts_with("not an image"), "{err}");
        assert!(!is_logo_file("../phones.toml"));
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Why an uploaded logo was not stored.
#[derive(Debug)]
pub enum Refused {
    /// No such phone.
    UnknownPhone,
    /// The phone cannot show one, or the image is unusable.
    Unusable(String),
    /// The conversion did not finish, or its result could not be kept.
    Failed(String),
}

/// Converts an uploaded image for phone `id`'s screen and hosts it, for the people's upload
/// route (`web`): the logo and the URL phones fetch it at.
pub async fn upload(
    shared: &super::Shared,
    id: &str,
    body: axum::body::Bytes,
) -> Result<(Logo, String), Refused> {
    let Some(phone) = shared
        .phones
        .registry
        .resolve(id)
        .and_then(|id| shared.phones.registry.get(&id))
    else {
        return Err(Refused::UnknownPhone);
    };
    let programming = &phone.vendor.programming;
    if programming.logo.is_none() {
        return Err(Refused::Unusable(format!(
            "{} phones have no logo setting",
            phone.vendor.name
        )));
    }
    let size = (programming.logo_size)(phone.info.model.as_deref());
    let data_dir = shared.kept.data_dir.clone();
    let converted =
        tokio::task::spawn_blocking(move || convert_and_store(&body, size, &data_dir)).await;
    match converted {
        Ok(Ok(logo)) => {
            let url = super::provisioning::logo_url(&shared.serving, &logo.file);
            Ok((logo, url))
        }
        // The data directory's path stays in the log, out of the answer.
        Ok(Err(LogoError::Store(err))) => {
            tracing::warn!(cause = %err, "An uploaded logo could not be kept.");
            Err(Refused::Failed(
                "the logo could not be kept in the data directory".into(),
            ))
        }
        Ok(Err(err)) => Err(Refused::Unusable(err.to_string())),
        Err(err) => Err(Refused::Failed(err.to_string())),
    }
}
