"""The finishing steps every benchmark plot shares: titles, grid, legend, a PNG at one resolution."""

import pathlib


def save(fig, ax, path: pathlib.Path, title: str, xlabel: str, ylabel: str, **legend) -> pathlib.Path:
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(**legend)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def subplots(*grid, **options):
    """matplotlib's figure and axes, drawn off-screen (no display on a server or in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*grid, **options)


def close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
