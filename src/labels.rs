//! Class labels. Every saved model carries its own list; ImageNet's 1000 ship with the crate.

use serde::{Deserialize, Serialize};

/// One class: a readable name and, for ImageNet classes, its WordNet id (e.g. `n03445777`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wnid: Option<String>,
}

/// ImageNet-1k's classes in index order: the sorted WordNet ids, with torchvision's names.
const IMAGENET_TSV: &str = include_str!("imagenet_classes.tsv");

/// The 1000 ImageNet classes, index `i` being class `i` of an ImageNet-trained model.
pub fn imagenet() -> Vec<Label> {
    IMAGENET_TSV
        .lines()
        .map(|line| {
            let (wnid, name) = line.split_once('\t').expect("imagenet_classes.tsv: wnid<TAB>name");
            Label { name: name.to_string(), wnid: Some(wnid.to_string()) }
        })
        .collect()
}

/// The ImageNet class with this WordNet id, if there is one.
pub fn imagenet_by_wnid(wnid: &str) -> Option<Label> {
    imagenet().into_iter().find(|l| l.wnid.as_deref() == Some(wnid))
}

/// A label for a dataset folder: ImageNet's name when the folder is a wnid, else the folder name.
pub fn from_folder_name(folder: &str) -> Label {
    imagenet_by_wnid(folder).unwrap_or_else(|| Label { name: folder.to_string(), wnid: None })
}

/// One ranked answer of the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub prob: f32,
}

/// The indices of the `k` most probable classes, most likely first (ties keep the lower index
/// first).
pub fn top_indices(probs: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// The `k` most probable classes, most likely first (ties keep the lower index first).
pub fn top_k(probs: &[f32], labels: &[Label], k: usize) -> Vec<Prediction> {
    top_indices(probs, k)
        .into_iter()
        .map(|index| Prediction {
            index,
            label: labels.get(index).map(|l| l.name.clone()).unwrap_or_else(|| format!("class {index}")),
            prob: probs[index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_has_1000_sorted_unique_wnids() {
        let labels = imagenet();
        assert_eq!(labels.len(), 1000);
        let wnids: Vec<_> = labels.iter().map(|l| l.wnid.clone().unwrap()).collect();
        assert!(wnids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(labels[0].name, "tench");
        assert_eq!(imagenet_by_wnid("n03445777").unwrap().name, "golf ball");
        assert_eq!(from_folder_name("cats").name, "cats");
    }

    #[test]
    fn top_k_ranks_by_probability() {
        let labels = vec![
            Label { name: "a".into(), wnid: None },
            Label { name: "b".into(), wnid: None },
            Label { name: "c".into(), wnid: None },
        ];
        let top = top_k(&[0.2, 0.5, 0.3], &labels, 2);
        assert_eq!(top.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(top[0].label, "b");
    }
}
