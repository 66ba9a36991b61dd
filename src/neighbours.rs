//! The paper's Figure 4: the photos whose fc7 features lie nearest a photo's (Euclidean
//! distance), among photos kept by an id. The page keeps every photo the visitor gives it.

/// Photos' fc7 features, by id.
#[derive(Debug, Default)]
pub struct Neighbours {
    ids: Vec<u32>,
    rows: Vec<Vec<f32>>,
}

impl Neighbours {
    /// Keeps (or replaces) photo `id`'s features.
    pub fn keep(&mut self, id: u32, features: Vec<f32>) {
        match self.ids.iter().position(|&kept| kept == id) {
            Some(i) => self.rows[i] = features,
            None => {
                self.ids.push(id);
                self.rows.push(features);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Forgets every photo.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The ids of at most `n` other photos nearest photo `id`, nearest first; none for an id not
    /// kept. Features of another width (another model's) are never compared.
    pub fn nearest(&self, id: u32, n: usize) -> Vec<u32> {
        let Some(me) = self.ids.iter().position(|&kept| kept == id) else {
            return Vec::new();
        };
        let query = &self.rows[me];
        let mut others: Vec<(f32, u32)> = self
            .ids
            .iter()
            .zip(&self.rows)
            .filter(|(&other, row)| other != id && row.len() == query.len())
            .map(|(&other, row)| (squared_distance(query, row), other))
            .collect();
        others.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        others.into_iter().take(n).map(|(_, other)| other).collect()
    }
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first_without_itself_or_other_widths() {
        let mut kept = Neighbours::default();
        kept.keep(1, vec![0.0, 0.0]);
        kept.keep(2, vec![3.0, 4.0]);
        kept.keep(3, vec![1.0, 0.0]);
        kept.keep(4, vec![0.0, -2.0]);
        kept.keep(5, vec![0.5, 0.5, 0.5]);
        assert_eq!(kept.nearest(1, 5), vec![3, 4, 2]);
        assert_eq!(kept.nearest(1, 2), vec![3, 4]);
        assert_eq!(kept.nearest(9, 5), Vec::<u32>::new());
        // Replacing a photo's features moves it.
        kept.keep(2, vec![0.1, 0.0]);
        assert_eq!(kept.nearest(1, 1), vec![2]);
        assert_eq!(kept.len(), 5);
    }
}
