//! What a layer's backward pass returns.

/// The gradients of a layer with weights and a bias, each as its tensor's values.
pub struct Gradients {
    /// The input's, when asked for.
    pub input: Option<Vec<f32>>,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}
