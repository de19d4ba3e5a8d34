//! Logos: an image (uploaded, or fetched from a URL) is converted to what the phone shows — a PNG
//! no larger than its screen — and kept in `<data_dir>/logos/`, from where the agent serves it
//! at `/logos/<file>` for the phone's provisioning to download.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, ImageReader};

use crate::metrics::{Limit, Metrics};

/// How large an image may be (`[limits] image_bytes` and `image_pixels`).
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    pub bytes: usize,
    /// The largest width or height.
    pub pixels: u32,
}

impl ImageLimits {
    pub fn of(limits: &crate::config::LimitsConfig) -> ImageLimits {
        ImageLimits {
            bytes: limits.image_bytes,
            pixels: limits.image_pixels,
        }
    }
}

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
    #[error("the image is {bytes} bytes; at most {max} are accepted ([limits] image_bytes)")]
    TooLarge { bytes: usize, max: usize },
    #[error("the image is {width} x {height} pixels; at most {max} x {max} are accepted ([limits] image_pixels)")]
    TooManyPixels { width: u32, height: u32, max: u32 },
    #[error("the image needs more memory to decode than [limits] image_pixels allows: {0}")]
    DecodeLimit(image::error::LimitError),
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

impl LogoError {
    /// Counts a refusal by `[limits]` under its limit.
    pub fn count(&self, metrics: &Metrics) {
        match self {
            LogoError::TooLarge { .. } => metrics.refused(Limit::image_bytes),
            LogoError::TooManyPixels { .. } | LogoError::DecodeLimit(_) => {
                metrics.refused(Limit::image_dimensions)
            }
            _ => {}
        }
    }
}

/// Converts and stores an image on a blocking thread, at most `[limits] image_decodes` at a
/// time (uploads and downloads share the permits); refusals are counted.
pub async fn convert(
    shared: &super::Shared,
    bytes: impl AsRef<[u8]> + Send + 'static,
    max: (u32, u32),
) -> Result<Logo, LogoError> {
    let limits = ImageLimits::of(&shared.limits);
    // Refused before waiting for a permit: the cheap checks need none.
    let converted = match check(bytes.as_ref(), limits) {
        Err(err) => Err(err),
        Ok(()) => {
            let _permit = shared.image_decodes.acquire().await;
            let data_dir = shared.kept.data_dir.clone();
            tokio::task::spawn_blocking(move || {
                convert_and_store(bytes.as_ref(), max, &data_dir, limits)
            })
            .await
            .unwrap_or_else(|err| {
                Err(LogoError::Unreadable(std::io::Error::other(
                    err.to_string(),
                )))
            })
        }
    };
    if let Err(err) = &converted {
        err.count(&shared.metrics);
    }
    converted
}

/// The file's size and, from its header alone, its dimensions.
fn check(bytes: &[u8], limits: ImageLimits) -> Result<(), LogoError> {
    if bytes.len() > limits.bytes {
        return Err(LogoError::TooLarge {
            bytes: bytes.len(),
            max: limits.bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(LogoError::Unreadable)?;
    if reader.format().is_none() {
        return Err(LogoError::NotAnImage);
    }
    let (width, height) = reader.into_dimensions().map_err(LogoError::Undecodable)?;
    if width > limits.pixels || height > limits.pixels {
        return Err(LogoError::TooManyPixels {
            width,
            height,
            max: limits.pixels,
        });
    }
    Ok(())
}

/// Decodes an image (PNG, JPEG, BMP or GIF), scales it down to fit `max` keeping its aspect,
/// and stores it as PNG. The header's dimensions are checked before decoding, and the decoder
/// is held to them too.
pub fn convert_and_store(
    bytes: &[u8],
    max: (u32, u32),
    data_dir: &Path,
    limits: ImageLimits,
) -> Result<Logo, LogoError> {
    check(bytes, limits)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(LogoError::Unreadable)?;
    let mut decoding = image::Limits::default();
    decoding.max_image_width = Some(limits.pixels);
    decoding.max_image_height = Some(limits.pixels);
    // Eight bytes a pixel (16-bit RGBA), and room for the decoder's own buffers.
    let pixels = u64::from(limits.pixels);
    decoding.max_alloc = Some(
        pixels
            .saturating_mul(pixels)
            .saturating_mul(8)
            .saturating_add(1 << 24),
    );
    reader.limits(decoding);
    let image = reader.decode().map_err(|err| match err {
        image::ImageError::Limits(limit) => LogoError::DecodeLimit(limit),
        err => LogoError::Undecodable(err),
    })?;
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
        let limits = ImageLimits {
            bytes: 1 << 20,
            pixels: 1000,
        };
        let logo = convert_and_store(&png(960, 300), (480, 272), &dir, limits).unwrap();
        assert_eq!((logo.width, logo.height), (480, 150));
        assert!(is_logo_file(&logo.file), "{}", logo.file);
        let stored = std::fs::read(dir.join("logos").join(&logo.file)).unwrap();
        assert!(stored.starts_with(b"\x89PNG"));
        let small = convert_and_store(&png(100, 50), (480, 272), &dir, limits).unwrap();
        assert_eq!((small.width, small.height), (100, 50));
        let err =
            convert_and_store(b"<html>not found</html>", (480, 272), &dir, limits).unwrap_err();
        assert!(matches!(err, LogoError::NotAnImage), "{err}");
        assert!(err.to_string().starts_with("not an image"), "{err}");
        assert!(!is_logo_file("../phones.toml"));
        let wide = convert_and_store(&png(1001, 10), (480, 272), &dir, limits).unwrap_err();
        assert!(
            matches!(wide, LogoError::TooManyPixels { width: 1001, .. }),
            "{wide}"
        );
        let small_file = ImageLimits {
            bytes: 100,
            pixels: 1000,
        };
        let big = convert_and_store(&png(960, 300), (480, 272), &dir, small_file).unwrap_err();
        assert!(matches!(big, LogoError::TooLarge { .. }), "{big}");
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
    /// The file is over `[limits] image_bytes` (413).
    TooLarge(String),
    /// Its width or height is over `[limits] image_pixels` (422).
    TooManyPixels(String),
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
    match convert(shared, body, size).await {
        Ok(logo) => {
            let url = super::provisioning::logo_url(&shared.serving, &logo.file);
            Ok((logo, url))
        }
        // The data directory's path stays in the log, out of the answer.
        Err(LogoError::Store(err)) => {
            tracing::warn!(cause = %err, "An uploaded logo could not be kept.");
            Err(Refused::Failed(
                "the logo could not be kept in the data directory".into(),
            ))
        }
        Err(err @ LogoError::TooLarge { .. }) => Err(Refused::TooLarge(err.to_string())),
        Err(err @ (LogoError::TooManyPixels { .. } | LogoError::DecodeLimit(_))) => {
            Err(Refused::TooManyPixels(err.to_string()))
        }
        Err(err) => Err(Refused::Unusable(err.to_string())),
    }
}
