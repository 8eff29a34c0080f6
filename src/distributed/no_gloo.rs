//! The Gloo group of a build without the `distributed` feature: it cannot be joined, so it never exists.

use super::Reduction;
use super::launch::Launch;
use tch::Tensor;

/// A joined Gloo group; this build has none.
pub enum GlooGroup {}

impl GlooGroup {
    /// Always fails: this build has no c10d shim.
    pub fn join(_: &Launch) -> Result<Self, String> {
        Err("this build has no distributed support".into())
    }

    /// Never called: there is no group.
    pub fn all_reduce(&self, _: &[Tensor], _: Reduction) -> Result<(), String> {
        match *self {}
    }

    /// Never called: there is no group.
    pub fn broadcast(&self, _: &[Tensor], _: usize) -> Result<(), String> {
        match *self {}
    }

    /// Never called: there is no group.
    pub fn all_gather(&self, _: &Tensor, _: &[Tensor]) -> Result<(), String> {
        match *self {}
    }

    /// Never called: there is no group.
    pub fn barrier(&self) -> Result<(), String> {
        match *self {}
    }
}
