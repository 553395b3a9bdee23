"""`vigil config check` and the configuration's owners: problems a person fixes in the YAML."""

TEXT: dict[str, dict[str, str]] = {
    "config.secret_unset": {
        "zh": "环境变量 {var} 未设置：请把此设置所需的密码或密钥放入该变量（或删除此设置）",
        "en": "environment variable {var} is not set: put the password or secret this setting needs in it "
        "(or remove the setting)",
    },
    "config.yaml_syntax": {
        "zh": "YAML 语法错误：{problem}",
        "en": "not valid YAML: {problem}",
    },
}
