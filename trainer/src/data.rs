//! Image folders (`<class>/<image>`, the ImageNet/Imagenette layout) and a parallel batch loader.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use alexnet::preprocess::{self, Normalization, RESIZE_SIZE};
use alexnet::train::augment;
use alexnet::INPUT_SIZE;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::cache::{ImageCache, Slot};

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "gif", "webp", "bmp"];

/// A dataset split laid out as one folder per class.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub root: PathBuf,
    /// Class folder names, sorted (the class index order).
    pub classes: Vec<String>,
    /// (image path, class index).
    pub samples: Vec<(PathBuf, usize)>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files directly in `dir`, sorted; none is an error naming the `kind` of folder.
fn images_in(dir: &Path, kind: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    if files.is_empty() {
        bail!("{kind} {} holds no images ({} files)", dir.display(), IMAGE_EXTENSIONS.join("/"));
    }
    files.sort();
    Ok(files)
}

impl ImageFolder {
    /// Lists `root/<class>/*` images. A missing folder, a folder without class folders, or a
    /// class folder without images is an error that names the folder.
    pub fn scan(root: &Path) -> Result<Self> {
        if root.is_file() {
            bail!("{} is a file, not a dataset folder (expected <class>/<image> inside)", root.display());
        }
        if !root.is_dir() {
            bail!("dataset folder {} does not exist (expected <class>/<image> inside)", root.display());
        }
        let mut classes: Vec<String> = std::fs::read_dir(root)
            .with_context(|| format!("reading {}", root.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter(|name| !name.starts_with('.'))
            .collect();
        classes.sort();
        if classes.is_empty() {
            bail!("{} holds no class folders (expected <class>/<image> inside)", root.display());
        }
        let mut samples = Vec::new();
        for (index, class) in classes.iter().enumerate() {
            let files = images_in(&root.join(class), "class folder")?;
            samples.extend(files.into_iter().map(|f| (f, index)));
        }
        Ok(Self { root: root.to_path_buf(), classes, samples })
    }

    /// Lists the images directly in `root`, without classes (one class named after the folder).
    /// A missing folder or one without images is an error that names it.
    pub fn images(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!("{} is not a folder of images", root.display());
        }
        let files = images_in(root, "folder")?;
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self {
            root: root.to_path_buf(),
            classes: vec![name],
            samples: files.into_iter().map(|f| (f, 0)).collect(),
        })
    }

    /// Keeps the first `max_classes` classes and at most `per_class` images of each (quick runs).
    pub fn subset(mut self, max_classes: Option<usize>, per_class: Option<usize>) -> Self {
        if let Some(n) = max_classes {
            self.classes.truncate(n);
        }
        let mut taken = vec![0usize; self.classes.len()];
        self.samples.retain(|(_, c)| {
            let keep = *c < taken.len() && per_class.is_none_or(|n| taken[*c] < n);
            if keep {
                taken[*c] += 1;
            }
            keep
        });
        self
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Files that failed to decode: skipped and counted, each once. Whoever shows progress reports
/// them ([`SkipLog::take_new`]): the dashboard holds them back while it owns the terminal.
#[derive(Default, Debug)]
pub struct SkipLog {
    inner: Mutex<Skipped>,
}

#[derive(Default, Debug)]
struct Skipped {
    files: Vec<(PathBuf, String)>,
    reported: usize,
}

impl SkipLog {
    fn record(&self, path: &Path, error: String) {
        let mut inner = self.inner.lock().unwrap();
        if !inner.files.iter().any(|(p, _)| p == path) {
            inner.files.push((path.to_path_buf(), error));
        }
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().files.len()
    }

    /// Warnings for the files skipped since the previous call.
    pub fn take_new(&self) -> Vec<String> {
        let mut inner = self.inner.lock().unwrap();
        let new = inner.files[inner.reported..]
            .iter()
            .map(|(path, error)| format!("warning: skipping {}: {error}", path.display()))
            .collect();
        inner.reported = inner.files.len();
        new
    }
}

/// How each image becomes network input.
#[derive(Debug, Clone, Copy)]
pub enum Transform {
    /// Random crop, flip and lighting, seeded per (seed, epoch, sample) so runs repeat exactly;
    /// `min_crop_area`: random-resized crops ([`augment::train_transform`]).
    Train { seed: u64, epoch: usize, min_crop_area: Option<f32> },
    /// The shared centre-crop evaluation transform.
    Center,
    /// The paper's test-time 10 crops: corners and centre of the resized image, and their mirrors.
    TenCrop,
}

impl Transform {
    pub fn crops_per_image(&self) -> usize {
        match self {
            Transform::TenCrop => 10,
            _ => 1,
        }
    }
}

/// One batch: `crops_per_image` inputs per kept image, flattened `[n, 3, 224, 224]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub inputs: Vec<f32>,
    pub labels: Vec<usize>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Decodes and transforms images on a worker pool, one batch ahead of the consumer.
///
/// Ours rather than burn's `DataLoader`: an unreadable image is skipped and reported instead of
/// ending the run, each sample's augmentation is seeded by (seed, epoch, index) so a resumed run
/// sees exactly the images an uninterrupted one would, and decoded images are cached per split.
pub struct Loader {
    folder: Arc<ImageFolder>,
    pool: Arc<rayon::ThreadPool>,
    norm: Normalization,
    /// The deterministic first half of one transform (`cached`), kept after the first decode.
    cache: Option<(PreparedImage, Arc<ImageCache>)>,
    pub skipped: Arc<SkipLog>,
}

/// The deterministic first half of a transform: what a cache can keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreparedImage {
    /// Shorter side 256, then the central 256x256 square (training).
    TrainSquare,
    /// The evaluation transform's pixels: shorter side 256, centre 224 crop.
    CenterCrop,
    /// Shorter side 256 (the 10 crops are cut from it).
    Resized,
}

impl Transform {
    fn prepared(&self) -> PreparedImage {
        match self {
            Transform::Train { .. } => PreparedImage::TrainSquare,
            Transform::Center => PreparedImage::CenterCrop,
            Transform::TenCrop => PreparedImage::Resized,
        }
    }
}

impl Loader {
    pub fn new(folder: ImageFolder, workers: usize, norm: Normalization) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers.max(1))
            .thread_name(|i| format!("loader-{i}"))
            .build()?;
        Ok(Self {
            folder: Arc::new(folder),
            pool: Arc::new(pool),
            norm,
            cache: None,
            skipped: Arc::new(SkipLog::default()),
        })
    }

    /// Keeps the decoded images of `transform` (a training or centre-crop one) in memory after
    /// their first use; with `dir`, also in a file there, read back by later runs.
    pub fn cached(mut self, transform: Transform, dir: Option<&Path>) -> Result<Self> {
        let (prepared, side, name) = match transform.prepared() {
            PreparedImage::TrainSquare => (PreparedImage::TrainSquare, RESIZE_SIZE, "train-square"),
            PreparedImage::CenterCrop => (PreparedImage::CenterCrop, INPUT_SIZE as u32, "center-crop"),
            PreparedImage::Resized => {
                bail!("the 10-crop transform's images differ in size and are not cached")
            }
        };
        let files: Vec<PathBuf> = self.folder.samples.iter().map(|(p, _)| p.clone()).collect();
        let split = self.folder.root.file_name().and_then(|n| n.to_str()).unwrap_or("split");
        let file = dir.map(|d| d.join(ImageCache::file_name(split, name, side, &files)));
        let cache = ImageCache::new(files.len(), side, file)?;
        self.cache = Some((prepared, Arc::new(cache)));
        Ok(self)
    }

    /// Writes the cache file once every image has been decoded (see [`Loader::cached`]).
    pub fn write_cache_if_complete(&self) -> Result<bool> {
        match &self.cache {
            Some((_, cache)) => cache.write_if_complete(),
            None => Ok(false),
        }
    }

    pub fn folder(&self) -> &ImageFolder {
        &self.folder
    }

    /// Batches of the samples at `order`, in that order, prepared one batch ahead on the pool.
    pub fn batches(&self, order: Vec<usize>, batch_size: usize, transform: Transform) -> Receiver<Batch> {
        let (sender, receiver) = sync_channel(2);
        let (folder, pool, norm, skipped) =
            (self.folder.clone(), self.pool.clone(), self.norm, self.skipped.clone());
        let cache =
            self.cache.clone().filter(|(prepared, _)| *prepared == transform.prepared()).map(|(_, c)| c);
        std::thread::spawn(move || {
            for chunk in order.chunks(batch_size.max(1)) {
                let items: Vec<Option<(Vec<f32>, usize)>> = pool.install(|| {
                    chunk
                        .par_iter()
                        .map(|&i| {
                            let (path, label) = &folder.samples[i];
                            match prepared_image(&folder, cache.as_deref(), i, transform.prepared()) {
                                Ok(base) => Some((finish(&base, transform, &norm, i), *label)),
                                Err(e) => {
                                    skipped.record(path, e);
                                    None
                                }
                            }
                        })
                        .collect()
                });
                let mut batch = Batch { inputs: Vec::new(), labels: Vec::new() };
                for (inputs, label) in items.into_iter().flatten() {
                    batch.inputs.extend(inputs);
                    batch.labels.push(label);
                }
                if sender.send(batch).is_err() {
                    return; // the consumer stopped early
                }
            }
        });
        receiver
    }
}

/// Decoded and made into `prepared` (kept in the cache when there is one).
fn prepared_image(
    folder: &ImageFolder,
    cache: Option<&ImageCache>,
    index: usize,
    prepared: PreparedImage,
) -> Slot {
    let make = || -> Slot {
        let path = &folder.samples[index].0;
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let image = preprocess::decode(&bytes).map_err(|e| e.to_string())?;
        Ok(Arc::new(match prepared {
            PreparedImage::TrainSquare => augment::train_base(&image),
            PreparedImage::CenterCrop => preprocess::eval_crop(&image),
            PreparedImage::Resized => preprocess::resize_shorter_side(&image, RESIZE_SIZE),
        }))
    };
    match cache {
        None => make(),
        Some(cache) => match cache.get(index) {
            Some(hit) => hit.clone(),
            None => cache.insert(index, make()).clone(),
        },
    }
}

fn finish(base: &RgbImage, transform: Transform, norm: &Normalization, index: usize) -> Vec<f32> {
    let size = INPUT_SIZE as u32;
    match transform {
        Transform::Train { seed, epoch, min_crop_area } => {
            let stream = seed
                ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
            augment::train_transform(base, norm, min_crop_area, &mut StdRng::seed_from_u64(stream))
        }
        Transform::Center => preprocess::to_chw(base, norm),
        Transform::TenCrop => {
            let (w, h) = (base.width(), base.height());
            let (cx, cy) = preprocess::center_crop_origin(w, h, size);
            let (right, bottom) = (w.saturating_sub(size), h.saturating_sub(size));
            let mut out = Vec::with_capacity(10 * 3 * INPUT_SIZE * INPUT_SIZE);
            for (left, top) in [(0, 0), (right, 0), (0, bottom), (right, bottom), (cx, cy)] {
                let crop = preprocess::crop(base, left, top, size);
                out.extend(preprocess::to_chw(&crop, norm));
                out.extend(preprocess::to_chw(&image::imageops::flip_horizontal(&crop), norm));
            }
            out
        }
    }
}

/// A seeded shuffle of `0..n` for one epoch.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_add(epoch as u64 * 7919)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_folders_are_clear_errors() {
        let err = ImageFolder::scan(Path::new("/no/such/dataset")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = ImageFolder::scan(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no class folders"), "{err}");
        std::fs::create_dir(dir.path().join("cats")).unwrap();
        std::fs::write(dir.path().join("cats/notes.txt"), "not an image").unwrap();
        let err = ImageFolder::scan(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cats") && err.to_string().contains("no images"), "{err}");
    }

    #[test]
    fn corrupt_images_are_skipped_and_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["a", "b"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            let img = RgbImage::from_pixel(40, 30, image::Rgb([10, 200, 30]));
            img.save(dir.path().join(class).join("good.png")).unwrap();
        }
        std::fs::write(dir.path().join("a/broken.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
        let folder = ImageFolder::scan(dir.path()).unwrap();
        assert_eq!(folder.len(), 3);
        let loader = Loader::new(folder, 2, Normalization::IMAGENET)
            .unwrap()
            .cached(Transform::Train { seed: 1, epoch: 0, min_crop_area: None }, None)
            .unwrap();
        for epoch in 0..2 {
            let batches: Vec<Batch> = loader
                .batches(vec![0, 1, 2], 2, Transform::Train { seed: 1, epoch, min_crop_area: None })
                .iter()
                .collect();
            let total: usize = batches.iter().map(|b| b.len()).sum();
            assert_eq!(total, 2, "the broken file is left out");
            assert!(batches.iter().all(|b| b.inputs.len() == b.len() * 3 * 224 * 224));
        }
        assert_eq!(loader.skipped.count(), 1);
    }

    #[test]
    fn ten_crop_gives_ten_inputs_and_training_is_repeatable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        let img = RgbImage::from_fn(300, 260, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
        img.save(dir.path().join("x/1.png")).unwrap();
        let loader = Loader::new(ImageFolder::scan(dir.path()).unwrap(), 1, Normalization::IMAGENET).unwrap();
        let ten = loader.batches(vec![0], 1, Transform::TenCrop).recv().unwrap();
        assert_eq!(ten.inputs.len(), 10 * 3 * 224 * 224);
        let t = Transform::Train { seed: 3, epoch: 4, min_crop_area: Some(0.5) };
        let a = loader.batches(vec![0], 1, t).recv().unwrap().inputs;
        let b = loader.batches(vec![0], 1, t).recv().unwrap().inputs;
        assert_eq!(a, b);
        let c = loader
            .batches(vec![0], 1, Transform::Train { seed: 3, epoch: 5, min_crop_area: Some(0.5) })
            .recv()
            .unwrap()
            .inputs;
        assert_ne!(a, c);
    }
}
