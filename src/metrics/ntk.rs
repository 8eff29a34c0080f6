//! Condition number of the empirical neural tangent kernel Θ = G·Gᵀ, from per-sample gradients.

use tch::{Kind, TchError, Tensor};

/// Value used for the faithful κ when it is NaN, as the reference does, or infinite (λ_min exactly 0 in f32,
/// which the reference would carry as ±inf and which JSON cannot hold).
pub const FAITHFUL_NAN_VALUE: f64 = 1e5;

/// Both condition numbers of one kernel, and what the sound one skipped.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Conditioning {
    /// λ_max / the smallest eigenvalue above `threshold · λ_max`, from Θ in f64.
    pub sound: f64,
    /// The reference's κ: λ_max / λ_min of Θ in f32, NaN (and ±inf) replaced by 1e5. Often rounding noise (docs/ALGORITHM.md §13.1).
    pub faithful: f64,
    /// Eigenvalues at or below the threshold, left out of the sound κ.
    pub dropped: usize,
    /// Largest eigenvalue (f64).
    pub lambda_max: f64,
    /// Number of samples (rows of G).
    pub samples: usize,
}

/// Per-sample gradients G (n × P, f32): for each batch, one forward through `forward`; then for each sample,
/// one backward of the sum of that sample's logits, keeping the graph, w.r.t. `parameters`. This is the NTK's
/// definition; the search computes the same rows faster with `replicas::gradient_rows`.
/// Parameters the graph does not reach contribute zero columns.
pub fn gradient_rows(
    forward: impl Fn(&Tensor) -> Tensor,
    parameters: &[Tensor],
    batches: &[Tensor],
) -> Result<Tensor, TchError> {
    let mut rows = Vec::new();
    for batch in batches {
        let logits = forward(batch);
        let per_sample = logits.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)?;
        for n in 0..per_sample.size()[0] {
            let grads = Tensor::f_run_backward(&[per_sample.get(n)], parameters, true, false)?;
            rows.push(gradient_columns(&grads, parameters, 1)?.flatten(0, -1));
        }
    }
    Tensor::f_stack(&rows, 0)
}

/// The gradients of `inputs` laid side by side as `rows` rows (each input's leading dimension must split into
/// `rows`); an input the backward pass did not reach contributes zero columns.
pub(crate) fn gradient_columns(grads: &[Tensor], inputs: &[Tensor], rows: i64) -> Result<Tensor, TchError> {
    let columns = grads
        .iter()
        .zip(inputs)
        .map(|(grad, input)| {
            let grad = if grad.defined() {
                grad.shallow_clone()
            } else {
                input.f_zeros_like()?
            };
            grad.f_reshape([rows, -1])
        })
        .collect::<Result<Vec<Tensor>, TchError>>()?;
    Tensor::f_cat(&columns, 1)
}

/// Condition numbers of Θ = G·Gᵀ; `threshold` is the relative cut of the sound κ (1e-9 by default).
/// Its allocations (the kernels in f64 and f32) go through tch's fallible calls.
pub fn conditioning(gradients: &Tensor, threshold: f64) -> Result<Conditioning, TchError> {
    let samples = gradients.size()[0] as usize;
    let g64 = gradients.f_to_kind(Kind::Double)?;
    let eigen64 = eigenvalues(&g64.f_matmul(&g64.f_tr()?)?)?;
    let lambda_max = eigen64.last().copied().unwrap_or(f64::NAN);
    let cut = threshold * lambda_max;
    let kept: Vec<f64> = eigen64.iter().copied().filter(|&l| l > cut).collect();
    let sound = match kept.first() {
        Some(&smallest) => lambda_max / smallest,
        None => f64::INFINITY,
    };
    let g32 = gradients.f_to_kind(Kind::Float)?;
    let eigen32 = eigenvalues(&g32.f_matmul(&g32.f_tr()?)?)?;
    let faithful = match (eigen32.first(), eigen32.last()) {
        (Some(&min), Some(&max)) => (max as f32 / min as f32) as f64,
        _ => f64::NAN,
    };
    Ok(Conditioning {
        sound,
        faithful: if !faithful.is_finite() {
            FAITHFUL_NAN_VALUE
        } else {
            faithful
        },
        dropped: eigen64.len() - kept.len(),
        lambda_max,
        samples,
    })
}

/// Ascending eigenvalues of a symmetric matrix, in the matrix's precision (read from its upper triangle).
fn eigenvalues(matrix: &Tensor) -> Result<Vec<f64>, TchError> {
    let values = matrix
        .f_linalg_eigvalsh("U")?
        .f_to_kind(Kind::Double)?
        .f_to_device(tch::Device::Cpu)?;
    Ok(Vec::<f64>::try_from(values).unwrap_or_default())
}
