//! Gzip decoding of request bodies into reusable buffers, bounded by the body limit. Nearly every body
//! is one gzip member with a bare header and a truthful size, decoded in one go; anything else goes
//! through flate2's streaming decoder, which decides what is accepted and with which error.

use std::io::Read;

/// Decodes gzip into `buf` (whose bytes are all initialised, so reads need not zero them first),
/// growing it as needed; answers the decoded length. Stops past `limit` bytes, as
/// `take(limit + 1).read_to_end(..)` did, so a bomb never costs more than the limit.
pub(crate) fn gunzip(body: &[u8], limit: usize, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    match gunzip_whole(body, limit, buf) {
        Some(n) => Ok(n),
        None => gunzip_streaming(body, limit, buf),
    }
}

/// The usual body in one go: one gzip member with a bare header and a trailer that states its size
/// truly. Inflating into a buffer that holds all of the output lets the inflater write there directly
/// instead of through its 32 KiB window (and a copy out of it). zlib-rs inflates about twice as fast as
/// flate2's default miniz_oxide, and inflating is a quarter of what an insert costs here. `None` for
/// anything else, which the streaming decoder then reads with its own errors and limits; what this
/// accepts, that decoder decodes to the same bytes.
fn gunzip_whole(body: &[u8], limit: usize, buf: &mut Vec<u8>) -> Option<usize> {
    // Magic, deflate, and no flags: no name, comment, extra field or header checksum to skip.
    let deflated = body.strip_prefix(&[0x1f, 0x8b, 8, 0])?.get(6..)?;
    let size = usize::try_from(u32::from_le_bytes(body.last_chunk::<4>().copied()?)).ok()?;
    if size > limit {
        return None;
    }
    if buf.len() < size {
        buf.resize(size, 0);
    }
    let out = buf.get_mut(..size)?;
    let mut inflate = zlib_rs::Inflate::new(false, 15);
    let status = inflate
        .decompress(deflated, out, zlib_rs::InflateFlush::Finish)
        .ok()?;
    let n = usize::try_from(inflate.total_out()).ok()?;
    let used = usize::try_from(inflate.total_in()).ok()?;
    let trailer = deflated.get(used..used.checked_add(8)?)?;
    let mut crc = flate2::Crc::new();
    crc.update(out.get(..n)?);
    let whole = status == zlib_rs::Status::StreamEnd
        && n == size
        && trailer[..4] == crc.sum().to_le_bytes()
        && trailer[4..] == crc.amount().to_le_bytes();
    whole.then_some(n)
}

fn gunzip_streaming(body: &[u8], limit: usize, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let cap = limit.saturating_add(1);
    let hint = gzip_size_hint(body, limit);
    if buf.len() < hint {
        buf.resize(hint, 0);
    }
    // The bufread decoder reads the slice in place (the read one would copy it through a buffer).
    let mut decoder = flate2::bufread::GzDecoder::new(body);
    let mut filled = 0;
    loop {
        if filled >= buf.len().min(cap) {
            if filled >= cap {
                return Ok(filled);
            }
            let grown = buf.len().saturating_mul(2).max(8 * 1024).min(cap);
            buf.resize(grown, 0);
        }
        let end = buf.len().min(cap);
        match decoder.read(&mut buf[filled..end]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// How much room a gzip body's content will take, from the size its trailer declares, so decoding
/// does not regrow (and copy) the buffer about twenty times for a few megabytes. Only a hint: a trailer
/// may lie, so it is capped by the limit and by deflate's best ratio (1032:1).
fn gzip_size_hint(body: &[u8], limit: usize) -> usize {
    let declared = body
        .len()
        .checked_sub(4)
        .and_then(|at| body.get(at..))
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map_or(0, u32::from_le_bytes);
    usize::try_from(declared)
        .unwrap_or(usize::MAX)
        .min(limit.saturating_add(1))
        .min(body.len().saturating_mul(1032))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn whole_bodies_decode_in_one_go_and_anything_else_streams_alike() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let plain = gzip(&data);
        let mut buf = Vec::new();
        assert_eq!(gunzip_whole(&plain, 1 << 20, &mut buf), Some(data.len()));
        assert_eq!(&buf[..data.len()], &data[..]);
        // Bodies it leaves to the streaming decoder, whose answer stands.
        let mut named = flate2::GzBuilder::new()
            .filename("rows.json")
            .write(Vec::new(), flate2::Compression::fast());
        named.write_all(&data).unwrap();
        let named = named.finish().unwrap();
        let mut bad_crc = plain.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let mut lying = plain.clone();
        let size = u32::try_from(data.len()).unwrap();
        lying[n - 4..].copy_from_slice(&(size + 1).to_le_bytes());
        let mut trailing = plain.clone();
        trailing.extend_from_slice(b"garbage!");
        // A second member is ignored by both ways, as it always was.
        let mut two = plain.clone();
        two.extend_from_slice(&plain);
        assert_eq!(gunzip_whole(&two, 1 << 20, &mut buf), Some(data.len()));
        assert_eq!(&buf[..data.len()], &data[..]);
        let mut fresh = Vec::new();
        assert_eq!(
            gunzip_streaming(&two, 1 << 20, &mut fresh).unwrap(),
            data.len()
        );
        let cut = plain[..n - 3].to_vec();
        for (name, body, limit) in [
            ("named", &named, 1 << 20),
            ("bad crc", &bad_crc, 1 << 20),
            ("lying size", &lying, 1 << 20),
            ("trailing bytes", &trailing, 1 << 20),
            ("cut short", &cut, 1 << 20),
            ("over the limit", &plain, data.len() - 1),
            ("empty", &Vec::new(), 100),
        ] {
            assert_eq!(gunzip_whole(body, limit, &mut buf), None, "{name}");
            let mut fresh = Vec::new();
            let streamed = gunzip_streaming(body, limit, &mut fresh).map(|n| fresh[..n].to_vec());
            let mut reused = vec![7; 3];
            let got = gunzip(body, limit, &mut reused).map(|n| reused[..n].to_vec());
            assert_eq!(
                got.map_err(|e| e.to_string()),
                streamed.map_err(|e| e.to_string()),
                "{name}"
            );
        }
        let empty = gzip(b"");
        assert_eq!(gunzip(&empty, 100, &mut buf).unwrap(), 0);
    }

    #[test]
    fn gzip_size_hint_trusts_the_trailer_only_so_far() {
        let data = vec![b'x'; 5000];
        let body = gzip(&data);
        assert_eq!(gzip_size_hint(&body, 1 << 20), 5000);
        assert_eq!(gzip_size_hint(&body, 100), 101);
        // A tiny body claiming 4 GiB gets no more than deflate could expand it to.
        assert_eq!(gzip_size_hint(&[0xff; 4], 1 << 30), 4 * 1032);
        assert_eq!(gzip_size_hint(&[1, 2, 3], 1 << 30), 0);
        // A lying trailer costs only the hint: the content decodes all the same.
        let mut lying = gzip(&data);
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        let err = gunzip(&lying, 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("checksum"),
            "the size check still applies: {err}"
        );
        let mut short = gzip(&data);
        let n = short.len();
        short[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert!(gunzip(&short, 1 << 20, &mut Vec::new()).is_err());
    }
}
