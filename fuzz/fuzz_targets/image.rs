//! Any bytes as a PNG or JPEG of an image-folder data set (`data::decode_image`, the folder source's decoder) never
//! panic, and whatever decodes converts to grey and RGB pixels of its own size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::data::decode_image;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(image) = decode_image(bytes) {
        let pixels = image.width() as usize * image.height() as usize;
        assert_eq!(image.to_luma8().as_raw().len(), pixels);
        assert_eq!(image.to_rgb8().as_raw().len(), 3 * pixels);
    }
});
