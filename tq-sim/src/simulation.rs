//! The run loop's state: a world and the safety checker watching it.
//!
//! The world applies events and reports what they did; after every event
//! the checker is fed those reports, in order, and then checks the whole
//! world, read-only (docs/protocol.md section 7).

use crate::event::Event;
use crate::invariants::{Checker, Violation};
use crate::options::SimOptions;
use crate::world::World;

/// A world under the safety checker: every event applied through it is
/// checked before the next one is drawn.
pub struct Simulation {
    world: World,
    checker: Checker,
}

impl Simulation {
    /// The world for `options` (see [`World::new`]), with a checker that has
    /// seen what building it did.
    pub fn new(options: SimOptions) -> Simulation {
        let mut world = World::new(options);
        let mut checker = Checker::default();
        for o in world.take_observations() {
            checker.observe(o);
        }
        Simulation { world, checker }
    }

    /// Applies one event to the world, then checks what it did.
    pub fn apply(&mut self, event: &Event) {
        self.world.apply(event);
        let observed = self.world.take_observations();
        self.checker.after_event(observed, &self.world);
    }

    /// Draws the next event from the world's state and fault plan.
    pub fn next_event(&mut self) -> Event {
        self.world.next_event()
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The checker.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        self.checker.violations()
    }

    /// The world, once the run is over.
    pub fn into_world(self) -> World {
        self.world
    }
}
