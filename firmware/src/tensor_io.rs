//! Reading and writing f32 data of tract tensors.

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
