"""MagFace (CVPR 2021): the margin grows with the feature norm a = ‖x‖, plus a regulariser g(a)."""

from __future__ import annotations

import math

from torch import Tensor

from training.losses.base import MarginContext, ScaledCosineLoss, arc_margin_cos, check_number


class MagFace(ScaledCosineLoss):
    """Target s·cos(θ_y + m(a)) (monotone fallback), others s·cos θ_j; loss = CE + λ_g·mean(g(a)).

    a = ‖x‖ clamped to [l_a, u_a]; m(a) linear from l_m to u_m; g(a) = a/u_a² + 1/a. The norm is the
    quality signal: feed the unnormalised backbone output (``needs_raw_norm``).
    """

    needs_raw_norm = True

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        s: float = 64.0,
        l_a: float = 10.0,
        u_a: float = 110.0,
        l_m: float = 0.45,
        u_m: float = 0.8,
        lambda_g: float = 35.0,
        easy_margin: bool = False,
        **kwargs: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.l_a = check_number("l_a", l_a, low=1e-6)
        self.u_a = check_number("u_a", u_a, low=1e-6)
        if self.u_a <= self.l_a:
            raise ValueError(f"magface needs l_a < u_a, got l_a={l_a}, u_a={u_a}")
        self.l_m = check_number("l_m", l_m, low=0.0, high=math.pi / 2)
        self.u_m = check_number("u_m", u_m, low=0.0, high=math.pi / 2)
        if self.u_m < self.l_m:
            raise ValueError(f"magface needs l_m <= u_m, got l_m={l_m}, u_m={u_m}")
        self.lambda_g = check_number("lambda_g", lambda_g, low=0.0)
        bound = self.lambda_g_lower_bound()
        if self.lambda_g < bound:
            raise ValueError(
                f"magface lambda_g={lambda_g} is below its bound s·k_m·u_a²·l_a²/(u_a² - l_a²) = {bound:.4g} "
                "(the loss then has no unique optimal norm); raise lambda_g or lower s"
            )
        self.easy_margin = bool(easy_margin)

    @property
    def slope(self) -> float:
        return (self.u_m - self.l_m) / (self.u_a - self.l_a)

    def lambda_g_lower_bound(self) -> float:
        return self.s * self.slope * self.u_a**2 * self.l_a**2 / (self.u_a**2 - self.l_a**2)

    def clamped_norm(self, x_norm: Tensor) -> Tensor:
        return x_norm.clamp(self.l_a, self.u_a)

    def margin(self, x_norm: Tensor) -> Tensor:
        """m(a) per sample."""
        return self.slope * (self.clamped_norm(x_norm) - self.l_a) + self.l_m

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        return arc_margin_cos(target, self.margin(ctx.x_norm)[ctx.rows], easy_margin=self.easy_margin)

    def per_sample_penalty(self, x_norm: Tensor) -> Tensor:
        a = self.clamped_norm(x_norm)
        return self.lambda_g * (a / self.u_a**2 + 1.0 / a)
