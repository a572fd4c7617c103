//! A QR code as a PNG data URL, the form of Stytch's `qr_code` field.

use base64::Engine;

/// Pixels per QR module.
const SCALE: usize = 4;
/// Light modules around the code, as the QR standard asks.
const QUIET: usize = 4;

/// `data:image/png;base64, ...` of a QR code of `text`. The space after the comma is in
/// Stytch's documented example, so it is kept. Empty if `text` does not fit a QR code.
pub fn qr_data_url(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let modules = code.width();
    let colors = code.to_colors();
    let size = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; size * size];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % modules, i / modules);
            for dy in 0..SCALE {
                let start = ((y + QUIET) * SCALE + dy) * size + (x + QUIET) * SCALE;
                pixels[start..start + SCALE].fill(0);
            }
        }
    }
    match greyscale_png(size as u32, &pixels) {
        Ok(png) => format!(
            "data:image/png;base64, {}",
            base64::engine::general_purpose::STANDARD.encode(png)
        ),
        Err(_) => String::new(),
    }
}

/// An 8-bit greyscale square image as PNG.
fn greyscale_png(size: u32, pixels: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_decodes_to_the_qr_modules() {
        let text = "otpauth://totp/Bridge:ada?secret=ABC";
        let url = qr_data_url(text);
        let b64 = url.strip_prefix("data:image/png;base64, ").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let modules = code.width();
        assert_eq!(info.width as usize, (modules + 2 * QUIET) * SCALE);
        // The centre pixel of every module has the module's colour.
        for (i, color) in code.to_colors().iter().enumerate() {
            let (x, y) = (i % modules, i / modules);
            let px = ((y + QUIET) * SCALE + SCALE / 2) * info.width as usize
                + (x + QUIET) * SCALE
                + SCALE / 2;
            assert_eq!(pixels[px] == 0, *color == qrcode::Color::Dark, "module {i}");
        }
    }
}
