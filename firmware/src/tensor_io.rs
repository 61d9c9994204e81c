//! Reading and writing f32 data of tract tensors, and loading models without tract's panics.

use tract_onnx::prelude::*;

pub fn f32_slice(t: &Tensor) -> TractResult<&[f32]> {
    t.try_as_plain_ram()?.as_slice::<f32>()
}

/// Refill an input tensor's f32 storage in place and hand it to tract as a value sharing that
/// storage. tract lets go of its inputs at the end of a run, so no frame copies the input (were
/// it still held, the tensor would be copied first, never changed under tract).
pub fn refill_input(t: &mut Arc<Tensor>, fill: impl FnOnce(&mut [f32])) -> TractResult<TValue> {
    let mut view = Arc::make_mut(t).try_as_plain_ram_mut()?;
    fill(view.as_slice_mut::<f32>()?);
    Ok(t.clone().into_tvalue())
}

/// Run a model-loading step whose tract calls may panic on a malformed file (tract-onnx 0.23.9
/// does on a node input that names no tensor, found by fuzzing), turning the panic into the
/// reason the file is refused.
pub fn without_panics<T>(load: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)).map_err(|payload| {
        let what = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
        format!("the ONNX reader failed on it ({})", what.as_deref().unwrap_or("no message"))
    })
}
