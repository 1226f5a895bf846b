"""Config loading, overrides and their errors."""
import pytest

from puffer.config import load_config, parse_value


def test_env_file_overrides_defaults_and_command_line_overrides_both():
    config = load_config("light_button", {"train.learning_rate": "1e-4", "env.hard": "true"})
    assert config["train"]["learning_rate"] == 1e-4
    assert config["env"]["hard"] is True
    assert config["env"]["num_buttons"] == 4          # from the env's options
    assert config["train"]["gamma"] == 0.99           # from defaults.toml


def test_int_is_accepted_for_float_and_strings_parse_as_toml():
    config = load_config("cartpole", {"train.learning_rate": 1, "train.device": "cpu"})
    assert config["train"]["learning_rate"] == 1.0 and isinstance(config["train"]["learning_rate"], float)
    assert parse_value("3") == 3 and parse_value("cuda:0") == "cuda:0" and parse_value("false") is False


def test_unknown_key_names_the_valid_keys():
    with pytest.raises(KeyError, match="learning_rat.*valid keys of \\[train\\]: .*learning_rate"):
        load_config("cartpole", {"train.learning_rat": "1e-3"})


def test_unknown_section_names_the_sections():
    with pytest.raises(KeyError, match="sections: .*train"):
        load_config("cartpole", {"trian.seed": "1"})


def test_unknown_env_option_names_the_options():
    with pytest.raises(KeyError, match="valid keys of \\[env\\]: num_buttons, horizon"):
        load_config("light_button", {"env.buttons": "3"})


@pytest.mark.parametrize("key,value", [("train.total_steps", "lots"), ("train.anneal_lr", "1"),
                                       ("vec.num_envs", "2.5"), ("train.device", 3)])
def test_wrong_type_is_an_error(key, value):
    with pytest.raises(TypeError, match=key.replace(".", "\\.")):
        load_config("cartpole", {key: value})
