//! Reading and writing f32 data of tract tensors.

use tract_onnx::prelude::*;

pub fn f32_slice(t: &Tensor) -> TractResult<&[f32]> {
    t.try_as_plain_ram()?.as_slice::<f32>()
}

/// Fill a tensor's f32 storage in place.
pub fn fill_f32(t: &mut Tensor, fill: impl FnOnce(&mut [f32])) -> TractResult<()> {
    let mut view = t.try_as_plain_ram_mut()?;
    fill(view.as_slice_mut::<f32>()?);
    Ok(())
}
