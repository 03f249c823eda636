"""The ego car: a jointed PyBullet multibody driven through its wheel and steering joints.

The model (``assets/car.urdf``, shipped as package data) is a 4.5 m x 1.8 m, 1490 kg passenger
car with a 2.7 m wheelbase. The rear wheels are driven; all four brake. Tyre-road grip is Coulomb
friction at each wheel contact: the wheels carry friction 1.0 in the URDF and the road carries
the world's friction coefficient, and Bullet multiplies the two, so ``World.set_friction(0.15)``
makes the car slide like on ice. (PyBullet ignores ``changeDynamics`` friction on these wheel
links unless the URDF has a ``<contact>`` element, so the URDF sets it.)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

from drive_sim._bullet import pb
from drive_sim.config import require
from drive_sim.types import Control, VehicleState

WHEEL_JOINTS = ("front_left_spin", "front_right_spin", "rear_left_spin", "rear_right_spin")
AIR_DENSITY_KGPM3 = 1.2
STEER_JOINTS = ("front_left_steer", "front_right_steer")
#: Height of the chassis frame above flat ground when the wheels touch it [m].
CHASSIS_Z_M = 0.45


def car_urdf_path() -> str:
    """Filesystem path of the packaged car model."""
    return str(resources.files("drive_sim") / "assets" / "car.urdf")


@dataclass(frozen=True)
class VehicleConfig:
    """Powertrain, brakes and steering of the ego car.

    Attributes:
        wheelbase_m: distance between axles [m] (must match the URDF).
        track_m: distance between left and right wheels [m] (must match the URDF).
        wheel_radius_m: [m] (must match the URDF).
        max_wheel_torque_nm: peak drive torque summed over the driven (rear) wheels [N m].
        max_power_w: engine power at the wheels [W]; torque falls as power / wheel speed.
        top_speed_mps: governor on the driven wheels' speed [m/s].
        brake_torque_front_nm: full-pedal brake torque per front wheel [N m].
        brake_torque_rear_nm: full-pedal brake torque per rear wheel [N m].
        engine_brake_torque_nm: drag torque per driven wheel with both pedals released [N m].
        max_steer_rad: largest bicycle-equivalent front-wheel angle [rad].
        steer_rate_rps: largest rate of change of that angle [rad/s].
        drag_area_m2: drag coefficient times frontal area, Cd*A [m^2].
        rolling_resistance: rolling-resistance coefficient (force / weight).
    """

    wheelbase_m: float = 2.7
    track_m: float = 1.56
    wheel_radius_m: float = 0.33
    max_wheel_torque_nm: float = 2600.0
    max_power_w: float = 95_000.0
    top_speed_mps: float = 55.0
    brake_torque_front_nm: float = 1800.0
    brake_torque_rear_nm: float = 1000.0
    engine_brake_torque_nm: float = 60.0
    max_steer_rad: float = 0.55
    steer_rate_rps: float = 1.2
    drag_area_m2: float = 0.66
    rolling_resistance: float = 0.012

    def drive_torque_nm(self, speed_mps: float) -> float:
        """Peak drive torque summed over the driven wheels at ``speed_mps`` [N m].

        Constant torque up to the power limit, then constant power: torque = P / omega.
        """
        omega = max(speed_mps / self.wheel_radius_m, 1.0)
        return min(self.max_wheel_torque_nm, self.max_power_w / omega)

    def resistance_n(self, speed_mps: float, mass_kg: float) -> float:
        """Aerodynamic drag plus rolling resistance at ``speed_mps`` for a car of ``mass_kg`` [N]."""
        return 0.5 * AIR_DENSITY_KGPM3 * self.drag_area_m2 * speed_mps * speed_mps + self.rolling_resistance * mass_kg * 9.81

    def __post_init__(self) -> None:
        for name in (
            "wheelbase_m",
            "track_m",
            "wheel_radius_m",
            "max_wheel_torque_nm",
            "max_power_w",
            "top_speed_mps",
            "max_steer_rad",
            "steer_rate_rps",
        ):
            value = getattr(self, name)
            require(value > 0, f"vehicle.{name}", f"must be positive, got {value}")
        for name in ("brake_torque_front_nm", "brake_torque_rear_nm", "engine_brake_torque_nm", "drag_area_m2", "rolling_resistance"):
            value = getattr(self, name)
            require(value >= 0, f"vehicle.{name}", f"must be non-negative, got {value}")
        require(self.max_steer_rad <= 0.7, "vehicle.max_steer_rad", f"must be at most 0.7 (the joint limit), got {self.max_steer_rad}")


class Vehicle:
    """The ego car in one ``BulletClient``.

    Args:
        client: the world's ``BulletClient``.
        cfg: powertrain and steering parameters.
    """

    LENGTH_M = 4.5
    WIDTH_M = 1.8

    def __init__(self, client: Any, cfg: VehicleConfig) -> None:
        self._c = client
        self.cfg = cfg
        self.body_id: int = client.loadURDF(car_urdf_path(), [0.0, 0.0, CHASSIS_Z_M])
        names = {client.getJointInfo(self.body_id, j)[1].decode(): j for j in range(client.getNumJoints(self.body_id))}
        self._wheels = [names[n] for n in WHEEL_JOINTS]
        self._steer = [names[n] for n in STEER_JOINTS]
        for link in range(-1, client.getNumJoints(self.body_id)):
            # PyBullet's default damping (0.04) acts like a strong parasitic drag on a car.
            client.changeDynamics(self.body_id, link, linearDamping=0.0, angularDamping=0.0, jointDamping=0.0, maxJointVelocity=400.0)
        # PyBullet functions bound to this client once: BulletClient builds a partial per call.
        cid = client._client
        self._set_motors = functools.partial(pb.setJointMotorControlArray, physicsClientId=cid)
        self._get_velocity = functools.partial(pb.getBaseVelocity, physicsClientId=cid)
        self._get_pose = functools.partial(pb.getBasePositionAndOrientation, physicsClientId=cid)
        self._apply_force = functools.partial(pb.applyExternalForce, physicsClientId=cid)
        self._steer_rad = 0.0
        self._target_steer = 0.0
        self._resist: list[float] | None = None
        self.mass_kg = sum(client.getDynamicsInfo(self.body_id, j)[0] for j in range(-1, client.getNumJoints(self.body_id)))

    # ------------------------------------------------------------------ placement
    def place(self, x_m: float, y_m: float, yaw_rad: float, speed_mps: float) -> None:
        """Put the car on the ground at (x, y) heading ``yaw`` rolling at ``speed``, wheels straight."""
        c = self._c
        c.resetBasePositionAndOrientation(self.body_id, [x_m, y_m, CHASSIS_Z_M], c.getQuaternionFromEuler([0.0, 0.0, yaw_rad]))
        c.resetBaseVelocity(self.body_id, [speed_mps * math.cos(yaw_rad), speed_mps * math.sin(yaw_rad), 0.0], [0.0, 0.0, 0.0])
        for j in self._wheels:
            c.resetJointState(self.body_id, j, 0.0, speed_mps / self.cfg.wheel_radius_m)
        for j in self._steer:
            c.resetJointState(self.body_id, j, 0.0, 0.0)
        self._steer_rad = 0.0
        self._target_steer = 0.0
        c.setJointMotorControlArray(
            self.body_id, self._steer, pb.POSITION_CONTROL, targetPositions=[0.0, 0.0], forces=[20000.0, 20000.0], positionGains=[1.0, 1.0]
        )

    def show(self, state: VehicleState) -> None:
        """Pose the car as ``state`` has it (chassis and steered wheels), for a view only: no physics."""
        c = self._c
        orn = c.getQuaternionFromEuler([state.roll_rad, state.pitch_rad, state.yaw_rad])
        c.resetBasePositionAndOrientation(self.body_id, [state.x_m, state.y_m, state.z_m], orn)
        left, right = self._ackermann(state.steer_rad)
        for j, angle in zip(self._steer, (left, right), strict=True):
            c.resetJointState(self.body_id, j, angle, 0.0)

    # ------------------------------------------------------------------ actuation
    def _ackermann(self, delta: float) -> tuple[float, float]:
        """Left and right wheel angles for bicycle angle ``delta`` (inner wheel turns more)."""
        if abs(delta) < 1e-6:
            return delta, delta
        cfg = self.cfg
        radius = cfg.wheelbase_m / math.tan(delta)  # signed, left turn positive
        left = math.atan(cfg.wheelbase_m / (radius - cfg.track_m / 2))
        right = math.atan(cfg.wheelbase_m / (radius + cfg.track_m / 2))
        return left, right

    def begin_period(self, control: Control, state: VehicleState) -> None:
        """Set the drive and brake torques and the resistance force for one control period.

        Torque and drag are computed once per period from ``state``, the car's state at its start
        (they change little in 0.1 s); steering is rate-limited per substep in ``substep``.
        """
        cfg = self.cfg
        self._target_steer = max(-1.0, min(1.0, control.steer)) * cfg.max_steer_rad
        speed = state.speed_mps
        r = cfg.wheel_radius_m
        brake = max(0.0, min(1.0, control.brake))
        throttle = max(0.0, min(1.0, control.throttle))
        if brake > 0.0:
            bf, br = brake * cfg.brake_torque_front_nm, brake * cfg.brake_torque_rear_nm
            self._set_motors(self.body_id, self._wheels, pb.VELOCITY_CONTROL, targetVelocities=[0.0] * 4, forces=[bf, bf, br, br])
        else:
            torque = throttle * cfg.drive_torque_nm(speed) / 2
            if throttle > 0.0:
                rear_target, rear_force = cfg.top_speed_mps / r, torque
            else:
                rear_target, rear_force = 0.0, cfg.engine_brake_torque_nm
            self._set_motors(
                self.body_id,
                self._wheels,
                pb.VELOCITY_CONTROL,
                targetVelocities=[0.0, 0.0, rear_target, rear_target],
                forces=[0.0, 0.0, rear_force, rear_force],
            )
        if speed > 0.05:
            # Aerodynamic drag and rolling resistance against the motion, held in the body frame.
            resist = cfg.resistance_n(speed, self.mass_kg)
            self._resist = [-resist * state.vx_mps / speed, -resist * state.vy_mps / speed, 0.0]
        else:
            self._resist = None

    def substep(self, dt_s: float) -> None:
        """Rate-limit the steering towards its target and apply the resistance for one physics step."""
        if self._steer_rad != self._target_steer:
            step = self.cfg.steer_rate_rps * dt_s
            self._steer_rad += max(-step, min(step, self._target_steer - self._steer_rad))
            left, right = self._ackermann(self._steer_rad)
            self._set_motors(
                self.body_id,
                self._steer,
                pb.POSITION_CONTROL,
                targetPositions=[left, right],
                forces=[20000.0, 20000.0],
                positionGains=[1.0, 1.0],
            )
        if self._resist is not None:
            self._apply_force(self.body_id, -1, self._resist, (0.0, 0.0, 0.0), pb.LINK_FRAME)

    def wheel_speed_mps(self) -> float:
        """Mean wheel circumferential speed [m/s]: what wheel odometry measures (slip included)."""
        states = pb.getJointStates(self.body_id, self._wheels, physicsClientId=self._c._client)
        return sum(s[1] for s in states) / len(states) * self.cfg.wheel_radius_m

    # ------------------------------------------------------------------ state
    def read_state(self) -> VehicleState:
        """Pose and velocity of the chassis (one PyBullet query of each)."""
        pos, orn = self._get_pose(self.body_id)
        lin, ang = self._get_velocity(self.body_id)
        roll, pitch, yaw = pb.getEulerFromQuaternion(orn)
        cy, sy = math.cos(yaw), math.sin(yaw)
        vx = cy * lin[0] + sy * lin[1]
        vy = -sy * lin[0] + cy * lin[1]
        return VehicleState(
            x_m=pos[0],
            y_m=pos[1],
            z_m=pos[2],
            yaw_rad=yaw,
            vx_mps=vx,
            vy_mps=vy,
            yaw_rate_rps=ang[2],
            speed_mps=math.hypot(lin[0], lin[1]),
            steer_rad=self._steer_rad,
            roll_rad=roll,
            pitch_rad=pitch,
        )
