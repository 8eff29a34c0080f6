//! NASWOT (Mellor et al., ICML 2021): how differently a network's ReLUs code the images of one batch. Each image
//! gets a binary code c (1 where a ReLU unit is active); K_H[i][j] = N_A − Hamming(c_i, c_j) counts the units on
//! which two images agree, and the score is log|K_H|.

use super::{MetricName, NetworkMetric, Probe};
use crate::genotype::Genotype;
use crate::metrics::lrc;
use crate::supernet::{Mode, Supernet};
use tch::{Kind, Tensor};

/// log|K_H| over the probe's NTK images, all batches together.
pub struct Naswot;

impl NetworkMetric for Naswot {
    fn names(&self) -> &'static [MetricName] {
        &[MetricName::Naswot]
    }

    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>> {
        let net = probe.network(genotype, repeat);
        let images = Tensor::f_cat(probe.batches(repeat).0, 0)?;
        Ok(vec![naswot(&net, &images)?])
    }
}

/// log|K_H| of `net`'s ReLU codes over `images`, in one train-mode pass without drop-path (as the region count
/// runs). A network whose codes cannot tell the images apart has K_H singular, and a score of −∞.
pub fn naswot(net: &Supernet, images: &Tensor) -> anyhow::Result<f64> {
    tch::no_grad(|| {
        let samples = images.size()[0] as usize;
        let (_, relus) = net.forward_with_relus(images, Mode::train(0.0));
        let codes = lrc::sign_pattern(&relus, samples).f_to_kind(Kind::Double)?;
        let inactive = codes.f_neg()?.f_add_scalar(1.0)?;
        let agreement = codes
            .f_matmul(&codes.f_tr()?)?
            .f_add(&inactive.f_matmul(&inactive.f_tr()?)?)?;
        let (sign, log_abs) = Tensor::f_linalg_slogdet(&agreement)?;
        let log_abs = log_abs.double_value(&[]);
        Ok(if sign.double_value(&[]) > 0.0 {
            log_abs
        } else {
            f64::NEG_INFINITY
        })
    })
}
