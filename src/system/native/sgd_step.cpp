// SGD updates with libtorch's own arithmetic (torch/csrc/api/src/optim/sgd.cpp, dampening 0). tch's `add` drops the `alpha` argument that update uses, and the fused `a + alpha * b` rounds
// differently from a product and a sum, so the update is written here to stay bitwise equal to libtorch's SGD.
// The tensors are tch's: each `void*` is an `at::Tensor*`.

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <exception>

extern "C" {

// Over `count` tensors: for each that requires a gradient and has one, d = g + wd·p; b = d (its first update, when
// started[i] is false; then started[i] becomes true) or b = μ·b + d; then p ← p − lr·b, or with Nesterov
// p ← p − lr·(d + μ·b). Returns the index of a tensor libtorch refused, or -1.
long spidernet_sgd_step(void** params, void** buffers, bool* started, size_t count, double lr, double momentum,
                        double weight_decay, bool nesterov) {
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < count; ++i) {
    try {
      at::Tensor& p = *static_cast<at::Tensor*>(params[i]);
      if (!p.requires_grad() || !p.grad().defined()) continue;
      at::Tensor& buf = *static_cast<at::Tensor*>(buffers[i]);
      at::Tensor d_p = p.grad();
      if (weight_decay != 0) d_p = d_p.add(p, weight_decay);
      if (momentum != 0) {
        if (!started[i]) {
          buf.copy_(d_p);
          started[i] = true;
        } else {
          buf.mul_(momentum).add_(d_p, 1.0);
        }
        d_p = nesterov ? d_p.add(buf, momentum) : buf;
      }
      p.add_(d_p, -lr);
    } catch (...) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

// Drops the gradients of `count` tensors (libtorch's zero_grad with set_to_none).
void spidernet_clear_grads(void** tensors, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    try {
      static_cast<at::Tensor*>(tensors[i])->mutable_grad().reset();
    } catch (...) {
    }
  }
}

// Gives each of `count` tensors that has no gradient a zero one (as a data-parallel step needs where another rank
// has one). Returns the index of a tensor libtorch refused, or -1.
long spidernet_zero_missing_grads(void** tensors, size_t count) {
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < count; ++i) {
    try {
      at::Tensor& p = *static_cast<at::Tensor*>(tensors[i]);
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    } catch (...) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

}  // extern "C"
