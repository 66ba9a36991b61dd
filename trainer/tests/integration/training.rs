//! End-to-end training on real Imagenette photos (CPU): it learns, and it resumes exactly.

use std::path::Path;
use std::process::Command;

use crate::common::imagenette;
use burn::backend::{Autodiff, Flex};
use trainer::backend::BackendInUse;
use trainer::options::TrainOptions;
use trainer::train::train;

type B = Autodiff<Flex>;

/// The backend's random generator is global to the process: runs in parallel tests would draw
/// each other's dropout masks. Training tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `trainer train` options for a narrow torchvision-preset AlexNet (the same model code, ~16x
/// fewer operations) on a subset of Imagenette, plus `extra` arguments.
fn options(out: &Path, extra: &[&str]) -> TrainOptions {
    let data = imagenette();
    let mut args: Vec<String> = ["--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(
        "--preset torchvision --width 0.25 --init he --epochs 1 --batch-size 16 --lr 0.001 --patience 3 \
         --workers 2 --seed 7 --train-per-class 150 --val-per-class 30 --cache-images"
            .split_whitespace()
            .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    TrainOptions::from_args(args).unwrap()
}

/// Under a minute of CPU training on 2,500 real photos must beat chance (10 %) four times over
/// on 500 held-out ones. The recipe that gets there on 2 cores: a quarter-width torchvision
/// AlexNet without dropout (dropout slows early learning, and a short run is all early learning),
/// He initialisation, and the learning rate divided by 10 for the last of 3 epochs (BENCHMARKS.md
/// has the accuracy it reaches).
#[test]
fn learns_imagenette_to_four_times_chance() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let opts = options(
        out.path(),
        &[
            "--epochs",
            "3",
            "--dropout",
            "0",
            "--lr-schedule",
            "step",
            "--step-every",
            "2",
            "--train-per-class",
            "250",
            "--val-per-class",
            "50",
        ],
    );
    let summary = train::<B>(&opts, &Default::default(), BackendInUse::cpu(), false).unwrap();
    let best = summary.history.iter().map(|m| m.val_top1).fold(0.0, f64::max);
    let last = summary.history.last().unwrap();
    println!("val top-1 by epoch: {:?}", summary.history.iter().map(|m| m.val_top1).collect::<Vec<_>>());
    // 10 classes: chance is 10 %; 500 held-out validation photos.
    assert!(
        last.val_top1 >= 0.40,
        "final val top-1 {:.1}% (best {:.1}%) < 40%",
        last.val_top1 * 100.0,
        best * 100.0
    );

    // The saved model evaluates and predicts through the CLI.
    let exe = env!("CARGO_BIN_EXE_trainer");
    let eval = Command::new(exe)
        .args(["eval", "--json", "--weights"])
        .arg(&summary.weights_f16)
        .arg("--data")
        .arg(imagenette())
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let (top1, top5) = (report["top1"].as_f64().unwrap(), report["top5"].as_f64().unwrap());
    println!("trainer eval, f16 weights, all {} val photos: top-1 {top1}, top-5 {top5}", report["images"]);
    // The whole val split (3,925 photos) against the training's own 500: the same model, so the
    // same accuracy within sampling error, and the f16 copy loses nothing measurable.
    assert_eq!(report["images"], 3925);
    assert!((top1 - last.val_top1).abs() < 0.06, "eval {top1} vs training's {}", last.val_top1);
    assert!(top5 > top1 && top5 > 0.8, "top-5 {top5}");
}

#[test]
fn resumed_run_matches_an_uninterrupted_one() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let small = |out: &Path, extra: &[&str]| {
        let mut args = vec!["--width", "0.125", "--max-classes", "2", "--train-per-class", "16"];
        args.extend(["--val-per-class", "8", "--batch-size", "8", "--epochs", "2"]);
        args.extend(extra);
        options(out, &args)
    };
    let a = tempfile::tempdir().unwrap();
    let whole = train::<B>(&small(a.path(), &[]), &Default::default(), BackendInUse::cpu(), false).unwrap();

    let b = tempfile::tempdir().unwrap();
    let first = small(b.path(), &["--epochs", "1"]);
    train::<B>(&first, &Default::default(), BackendInUse::cpu(), false).unwrap();
    // Starting again without --resume would overwrite the checkpoint: refused.
    let err = train::<B>(&first, &Default::default(), BackendInUse::cpu(), false).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    let resumed =
        train::<B>(&small(b.path(), &["--resume"]), &Default::default(), BackendInUse::cpu(), false).unwrap();

    assert_eq!(whole.history.len(), 2);
    assert_eq!(resumed.history.len(), 2);
    for (x, y) in whole.history.iter().zip(&resumed.history) {
        for (name, p, q) in [
            ("train_loss", x.train_loss, y.train_loss),
            ("val_loss", x.val_loss, y.val_loss),
            ("val_top1", x.val_top1, y.val_top1),
            ("lr", x.lr, y.lr),
        ] {
            assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "epoch {}: {name} {p} vs {q}", x.epoch);
        }
    }

    // A warm start from the finished run's weights (at a rate too small to move them) validates
    // as that run's last epoch did; another width is refused before any training.
    let warm = tempfile::tempdir().unwrap();
    let weights = whole.weights.to_str().unwrap();
    let from = small(warm.path(), &["--from", weights, "--epochs", "1", "--lr", "1e-12"]);
    let started = train::<B>(&from, &Default::default(), BackendInUse::cpu(), false).unwrap();
    let (before, after) = (whole.history.last().unwrap(), &started.history[0]);
    assert!((before.val_loss - after.val_loss).abs() < 1e-4, "{} vs {}", before.val_loss, after.val_loss);
    assert_eq!(before.val_top1, after.val_top1);
    let other = tempfile::tempdir().unwrap();
    let err = train::<B>(
        &small(other.path(), &["--from", weights, "--width", "0.25"]),
        &Default::default(),
        BackendInUse::cpu(),
        false,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("holds another network (preset torchvision, width 0.125"), "{err:#}");

    // A checkpoint with a flipped byte is refused by name (it used to resume into a loss of 1e26).
    let model_file = b.path().join("checkpoint/model-2.bin");
    let mut bytes = std::fs::read(&model_file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&model_file, &bytes).unwrap();
    let err = train::<B>(
        &small(b.path(), &["--resume", "--epochs", "3"]),
        &Default::default(),
        BackendInUse::cpu(),
        false,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("model-2.bin is corrupt or truncated"), "{err:#}");

    // A checkpoint folder that cannot be written is found before the first epoch.
    let c = tempfile::tempdir().unwrap();
    std::fs::write(c.path().join("checkpoint"), "a file where the folder goes").unwrap();
    let err = train::<B>(&small(c.path(), &[]), &Default::default(), BackendInUse::cpu(), false).unwrap_err();
    assert!(
        format!("{err:#}")
            .contains(&format!("checkpoints cannot be written to {}", c.path().join("checkpoint").display())),
        "{err:#}"
    );
    assert!(!c.path().join("metrics.csv").exists(), "an epoch ran");
}

/// `--devices 2` on the CPU: two peers sharing it train like one device (the same SGD on the
/// whole batch, float sums in another order), resume exactly, and refuse a batch that does not
/// split evenly.
#[test]
fn two_peers_train_like_one_and_resume() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // No dropout: peers sharing the CPU draw their masks from one generator in no fixed order.
    let small = |out: &Path, extra: &[&str]| {
        let mut args =
            vec!["--width", "0.125", "--max-classes", "2", "--train-per-class", "16", "--dropout", "0"];
        args.extend(["--val-per-class", "8", "--batch-size", "8", "--epochs", "2"]);
        args.extend(extra);
        options(out, &args)
    };
    let run = |opts: &TrainOptions| train::<B>(opts, &Default::default(), BackendInUse::cpu(), false);
    let a = tempfile::tempdir().unwrap();
    let one = run(&small(a.path(), &[])).unwrap();
    let b = tempfile::tempdir().unwrap();
    let two = run(&small(b.path(), &["--devices", "2"])).unwrap();
    let c = tempfile::tempdir().unwrap();
    run(&small(c.path(), &["--devices", "2", "--epochs", "1"])).unwrap();
    let resumed = run(&small(c.path(), &["--devices", "2", "--resume"])).unwrap();

    assert_eq!(two.history.len(), 2);
    // This small model's val outputs sit near 50/50, so a float-order difference may flip one of
    // the 16 val images: top-1 may differ by one image, the losses by their rounding only.
    let one_image = 1.0 / 16.0 + 1e-6;
    for ((x, y), z) in one.history.iter().zip(&two.history).zip(&resumed.history) {
        for (name, p, q, r, one_vs_two) in [
            ("train_loss", x.train_loss, y.train_loss, z.train_loss, 1e-3 * x.train_loss.abs().max(1.0)),
            ("val_loss", x.val_loss, y.val_loss, z.val_loss, 1e-3 * x.val_loss.abs().max(1.0)),
            ("val_top1", x.val_top1, y.val_top1, z.val_top1, one_image),
        ] {
            assert!((p - q).abs() <= one_vs_two, "epoch {}: {name} one {p} vs two {q}", x.epoch);
            assert!((q - r).abs() <= 1e-6 * q.abs().max(1.0), "epoch {}: {name} {q} vs resumed {r}", x.epoch);
        }
    }

    let d = tempfile::tempdir().unwrap();
    let err = run(&small(d.path(), &["--devices", "2", "--batch-size", "7"])).unwrap_err();
    assert_eq!(err.to_string(), "--batch-size 7 does not split into 2 equal shares (--devices 2)");
}
