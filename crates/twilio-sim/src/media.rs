//! Recording audio, made in code: what the sim serves at a recording's URL.
//!
//! MP3: MPEG-1 Layer III frames at 32 kHz, 32 kbit/s, mono, each 144 bytes
//! and 1152 samples (36 ms). Every frame's side information is zero (no
//! Huffman data, `main_data_begin` 0), which decoders play as silence: valid
//! MPEG audio of the recording's length, without an encoder. WAV: 8 kHz
//! 16-bit mono PCM (Twilio's format), a quiet 440 Hz tone.

/// Longest audio served (an hour): a bound on memory, whatever a duration says.
const MAX_SECONDS: u64 = 3600;

const MP3_SAMPLE_RATE: u64 = 32_000;
const MP3_SAMPLES_PER_FRAME: u64 = 1152;
pub(crate) const MP3_FRAME_BYTES: usize = 144;
/// Sync, MPEG-1, Layer III, no CRC; 32 kbit/s, 32 kHz, no padding; mono,
/// original.
const MP3_HEADER: [u8; 4] = [0xFF, 0xFB, 0x18, 0xC4];

/// `seconds` of MP3 (at least one second).
pub fn mp3(seconds: u64) -> Vec<u8> {
    let seconds = seconds.clamp(1, MAX_SECONDS);
    let frames = (seconds * MP3_SAMPLE_RATE).div_ceil(MP3_SAMPLES_PER_FRAME) as usize;
    let mut out = Vec::with_capacity(frames * MP3_FRAME_BYTES);
    for _ in 0..frames {
        out.extend_from_slice(&MP3_HEADER);
        out.resize(out.len() + MP3_FRAME_BYTES - MP3_HEADER.len(), 0);
    }
    out
}

const WAV_SAMPLE_RATE: u32 = 8000;

/// `seconds` of WAV (at least one second).
pub fn wav(seconds: u64) -> Vec<u8> {
    let seconds = seconds.clamp(1, MAX_SECONDS);
    let samples = seconds as u32 * WAV_SAMPLE_RATE;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // PCM header size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&WAV_SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(WAV_SAMPLE_RATE * 2).to_le_bytes()); // bytes a second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits a sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    let step = 2.0 * std::f64::consts::PI * 440.0 / f64::from(WAV_SAMPLE_RATE);
    for n in 0..samples {
        let sample = ((f64::from(n) * step).sin() * 2000.0) as i16;
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// The play time of MPEG-1 Layer III `bytes`, walking frame by frame; `None`
/// if they are not a clean sequence of such frames.
pub fn mp3_duration_ms(bytes: &[u8]) -> Option<u64> {
    const BITRATES: [u64; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const RATES: [u64; 3] = [44_100, 48_000, 32_000];
    let (mut at, mut samples, mut rate) = (0usize, 0u64, 0u64);
    while at < bytes.len() {
        let header = bytes.get(at..at + 4)?;
        // 11 sync bits, MPEG-1 (11), Layer III (01).
        if header[0] != 0xFF || header[1] & 0xFE != 0xFA {
            return None;
        }
        let bitrate = *BITRATES.get(usize::from(header[2] >> 4)).filter(|b| **b > 0)?;
        rate = *RATES.get(usize::from((header[2] >> 2) & 0b11))?;
        let padding = u64::from((header[2] >> 1) & 1);
        let length = (144 * bitrate * 1000 / rate + padding) as usize;
        at += length;
        samples += MP3_SAMPLES_PER_FRAME;
    }
    (at == bytes.len() && rate > 0).then(|| samples * 1000 / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp3_is_a_clean_run_of_frames_as_long_as_asked() {
        let audio = mp3(3);
        assert_eq!(&audio[..4], &MP3_HEADER);
        let ms = mp3_duration_ms(&audio).expect("valid frames");
        assert!((3000..3036).contains(&ms), "{ms} ms");
        assert_eq!(
            mp3_duration_ms(&mp3(0)).map(|ms| ms / 1000),
            Some(1),
            "at least a second"
        );
        assert_eq!(mp3_duration_ms(&audio[..audio.len() - 1]), None, "a cut frame");
        assert_eq!(mp3_duration_ms(b"<Response/>"), None);
    }

    #[test]
    fn wav_has_a_pcm_header_and_the_samples() {
        let audio = wav(2);
        assert_eq!(&audio[..4], b"RIFF");
        assert_eq!(&audio[8..16], b"WAVEfmt ");
        assert_eq!(audio.len(), 44 + 2 * 8000 * 2);
    }
}
