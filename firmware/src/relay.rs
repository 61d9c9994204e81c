//! The unlock output: a relay behind any `embedded_hal::digital::OutputPin`. It is driven to
//! *locked* when created, after every pulse, and when dropped, so every exit path that unwinds
//! (return, error, panic, a signal turned into a clean stop) leaves the door locked.

use embedded_hal::digital::{ErrorType, OutputPin};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("relay pin: {0}")]
pub struct RelayError(String);

pub struct Relay<P: OutputPin> {
    pin: P,
    active_low: bool,
    pulse: Duration,
}

impl<P: OutputPin> Relay<P> {
    /// Take the pin and lock at once.
    pub fn new(pin: P, active_low: bool, pulse: Duration) -> Result<Self, RelayError> {
        let mut relay = Self { pin, active_low, pulse };
        relay.lock()?;
        Ok(relay)
    }

    /// Energise the relay (unlocked) for the configured pulse, then lock again. The lock is
    /// attempted even if energising failed.
    pub fn pulse(&mut self) -> Result<(), RelayError> {
        let opened = self.set(true);
        if opened.is_ok() {
            std::thread::sleep(self.pulse);
        }
        let locked = self.lock();
        opened.and(locked)
    }

    pub fn lock(&mut self) -> Result<(), RelayError> {
        self.set(false)
    }

    fn set(&mut self, energised: bool) -> Result<(), RelayError> {
        let high = energised != self.active_low;
        let r = if high { self.pin.set_high() } else { self.pin.set_low() };
        r.map_err(|e| RelayError(format!("{e:?}")))
    }
}

impl<P: OutputPin> Drop for Relay<P> {
    fn drop(&mut self) {
        if let Err(e) = self.lock() {
            log::error!("could not lock the relay on exit: {e}");
        }
    }
}

/// A pin for dev boxes: logs its level instead of driving hardware.
#[derive(Debug, Default)]
pub struct DryRunPin {
    pub high: bool,
}

impl ErrorType for DryRunPin {
    type Error = std::convert::Infallible;
}

impl OutputPin for DryRunPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.high = false;
        log::info!("relay pin (dry run) low");
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.high = true;
        log::info!("relay pin (dry run) high");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    #[test]
    fn locked_then_pulse_then_locked_then_locked_on_drop() {
        let expectations = [
            Transaction::set(State::Low),
            Transaction::set(State::High),
            Transaction::set(State::Low),
            Transaction::set(State::Low),
        ];
        let mut pin = Mock::new(&expectations);
        {
            let mut relay = Relay::new(pin.clone(), false, Duration::from_millis(1)).unwrap();
            relay.pulse().unwrap();
        }
        pin.done();
    }

    #[test]
    fn active_low_inverts_every_level() {
        let expectations = [Transaction::set(State::High), Transaction::set(State::Low), Transaction::set(State::High), Transaction::set(State::High)];
        let mut pin = Mock::new(&expectations);
        {
            let mut relay = Relay::new(pin.clone(), true, Duration::from_millis(1)).unwrap();
            relay.pulse().unwrap();
        }
        pin.done();
    }

    #[test]
    fn a_panic_while_unlocked_still_locks() {
        let expectations = [Transaction::set(State::Low), Transaction::set(State::High), Transaction::set(State::Low)];
        let mut pin = Mock::new(&expectations);
        let p = pin.clone();
        let result = std::panic::catch_unwind(move || {
            let mut relay = Relay::new(p, false, Duration::from_millis(1)).unwrap();
            relay.set(true).unwrap();
            panic!("simulated fault while the door is open");
        });
        assert!(result.is_err());
        pin.done();
    }
}
