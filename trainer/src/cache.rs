//! Decoded images kept between epochs (`--cache-images`) and between runs (`--cache-dir`).
//!
//! Decoding a JPEG and resizing it costs more than the rest of the input pipeline together
//! (docs/benchmarks-history.md: decode+augment vs cached, per core). The deterministic part of each
//! transform (decode, resize, the fixed crop) is done once and kept in memory. With a cache folder,
//! the first complete pass over a split writes those images to one file: a JSON header line, then
//! every image as raw RGB bytes of the same size. Later runs (a resumed run, the next phase of a
//! schedule, another seed) read it back in large blocks instead of decoding. Our own format rather
//! than a dataset library's: it is a flat array of same-sized images.

use std::collections::BTreeMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context, Result};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One image's cached result: its pixels, or why it could not be read.
pub type Slot = Result<Arc<RgbImage>, String>;

const FORMAT: &str = "alexnet-image-cache-1";
/// Large reads and writes: the file is read once, front to back.
const BLOCK: usize = 16 << 20;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    /// Images are `side` x `side` RGB.
    side: u32,
    count: usize,
    /// Images that could not be read, by index, with the reason (their bytes are zeros).
    failed: BTreeMap<usize, String>,
}

/// The in-memory cache of one split, and the file that backs it (if any).
pub struct ImageCache {
    slots: Vec<OnceLock<Slot>>,
    /// Side of every cached image (the file format needs one size).
    side: u32,
    file: Option<PathBuf>,
    written: AtomicBool,
}

impl ImageCache {
    /// An empty cache of `count` images of `side` x `side`. With `file`, it is filled from that
    /// file when it exists (and is written there after the first complete pass otherwise).
    pub fn new(count: usize, side: u32, file: Option<PathBuf>) -> Result<Self> {
        let cache = Self {
            slots: (0..count).map(|_| OnceLock::new()).collect(),
            side,
            file,
            written: AtomicBool::new(false),
        };
        if let Some(path) = cache.file.as_ref().filter(|p| p.exists()) {
            cache.read(path).with_context(|| format!("reading the image cache {}", path.display()))?;
            cache.written.store(true, Ordering::Relaxed);
        }
        Ok(cache)
    }

    /// The file name for a split: the images' paths, sizes and modification times, and the
    /// transform, hashed, so another subset or changed files get another file.
    pub fn file_name(split: &str, transform: &str, side: u32, files: &[PathBuf]) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (FORMAT, transform, side).hash(&mut hasher);
        for path in files {
            path.hash(&mut hasher);
            if let Ok(meta) = std::fs::metadata(path) {
                meta.len().hash(&mut hasher);
                meta.modified().ok().hash(&mut hasher);
            }
        }
        format!("{split}-{transform}-{:016x}.rgb", hasher.finish())
    }

    pub fn get(&self, index: usize) -> Option<&Slot> {
        self.slots[index].get()
    }

    /// Keeps `slot` for `index` (the first one kept wins) and returns what is kept.
    pub fn insert(&self, index: usize, slot: Slot) -> &Slot {
        self.slots[index].get_or_init(|| slot)
    }

    pub fn is_complete(&self) -> bool {
        self.slots.iter().all(|s| s.get().is_some())
    }

    /// Writes the backing file once every image is cached (atomically: a partial file is never
    /// read). Returns whether it wrote.
    pub fn write_if_complete(&self) -> Result<bool> {
        let Some(path) = &self.file else { return Ok(false) };
        if self.written.load(Ordering::Relaxed) || !self.is_complete() {
            return Ok(false);
        }
        let partial = path.with_extension("rgb.partial");
        self.write(&partial)
            .and_then(|()| Ok(std::fs::rename(&partial, path)?))
            .with_context(|| format!("writing the image cache {}", path.display()))?;
        self.written.store(true, Ordering::Relaxed);
        Ok(true)
    }

    fn block_len(&self) -> usize {
        self.side as usize * self.side as usize * 3
    }

    fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let failed = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.get().and_then(|s| s.as_ref().err()).map(|e| (i, e.clone())))
            .collect();
        let header = Header { format: FORMAT.into(), side: self.side, count: self.slots.len(), failed };
        let mut out = BufWriter::with_capacity(BLOCK, File::create(path)?);
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        let zeros = vec![0u8; self.block_len()];
        for slot in &self.slots {
            match slot.get() {
                Some(Ok(image)) if image.dimensions() == (self.side, self.side) => {
                    out.write_all(image.as_raw())?
                }
                Some(Ok(image)) => {
                    bail!("an image of {:?} in a cache of {}-pixel squares", image.dimensions(), self.side)
                }
                _ => out.write_all(&zeros)?,
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }

    fn read(&self, path: &Path) -> Result<()> {
        let mut input = BufReader::with_capacity(BLOCK, File::open(path)?);
        let mut line = String::new();
        input.read_line(&mut line)?;
        let header: Header = serde_json::from_str(&line).context("not an image cache (bad header)")?;
        if header.format != FORMAT || header.side != self.side || header.count != self.slots.len() {
            bail!(
                "it holds {} images of {} pixels ({}), expected {} of {} ({FORMAT}): delete it to rebuild it",
                header.count,
                header.side,
                header.format,
                self.slots.len(),
                self.side
            );
        }
        for (index, slot) in self.slots.iter().enumerate() {
            let mut pixels = vec![0u8; self.block_len()];
            input.read_exact(&mut pixels).context("the file is truncated: delete it to rebuild it")?;
            let value = match header.failed.get(&index) {
                Some(error) => Err(error.clone()),
                None => Ok(Arc::new(RgbImage::from_raw(self.side, self.side, pixels).expect("block size"))),
            };
            let _ = slot.set(value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_cache_is_written_once_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.rgb");
        let cache = ImageCache::new(3, 4, Some(file.clone())).unwrap();
        let image = |v: u8| Ok(Arc::new(RgbImage::from_fn(4, 4, |x, y| image::Rgb([v, x as u8, y as u8]))));
        cache.insert(0, image(1));
        cache.insert(2, Err("broken".into()));
        assert!(!cache.write_if_complete().unwrap(), "not complete yet");
        cache.insert(1, image(2));
        assert!(cache.write_if_complete().unwrap());
        assert!(!cache.write_if_complete().unwrap(), "written once");

        let again = ImageCache::new(3, 4, Some(file.clone())).unwrap();
        assert!(again.is_complete());
        assert_eq!(again.get(1).unwrap().as_ref().unwrap().as_raw(), image(2).unwrap().as_raw());
        assert_eq!(again.get(2).unwrap().as_ref().unwrap_err(), "broken");

        let other = ImageCache::new(2, 4, Some(file.clone())).err().unwrap();
        assert!(format!("{other:#}").contains("expected 2 of 4"), "{other:#}");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
        let truncated = ImageCache::new(3, 4, Some(file)).err().unwrap();
        assert!(format!("{truncated:#}").contains("truncated"), "{truncated:#}");
    }
}
